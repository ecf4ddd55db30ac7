import { useState } from "react";
import { api } from "../api";
import { ErrorLine, Section } from "../components/Ui";
import { duration, number, percent } from "../format";
import { usePoll } from "../hooks";
import type { ActiveQuery, Role } from "../types";

export function Queries({ role }: { role: Role }) {
  const [includeIdle, setIncludeIdle] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const list = usePoll(() => api.queries(includeIdle), 3000, [includeIdle]);
  const top = usePoll(() => api.top(20), 15000);
  const canCancel = role === "operator" || role === "admin";
  const canTerminate = role === "admin";

  async function signal(q: ActiveQuery, action: "cancel" | "terminate") {
    const what = action === "cancel" ? "Cancel the running statement of" : "Terminate the session";
    if (!window.confirm(`${what} pid ${q.pid} on ${q.node}?`)) return;
    setActionError(null);
    try {
      const result = await api.signal(q.node, q.pid, action);
      setNotice(`${action} sent to pid ${result.pid} on ${result.node}: ${result.signalled ? "done" : "not signalled"}`);
      list.refresh();
    } catch (err) {
      setActionError((err as Error).message);
    }
  }

  return (
    <div className="page">
      <Section
        title="Active queries"
        actions={
          <label className="inline">
            <input type="checkbox" checked={includeIdle} onChange={(e) => setIncludeIdle(e.target.checked)} /> show idle
          </label>
        }
      >
        <ErrorLine message={list.error ?? actionError} />
        {notice && <p className="notice" role="status">{notice}</p>}
        <p className="muted hint" data-testid="literals-note">
          {role === "admin"
            ? "Literals that may hold a secret (passwords, keys, connection strings) show as '***'."
            : "String literals show as '***': only admins see values, and never secrets."}
        </p>
        {list.data?.errors.map((e) => <p key={e.node} className="error">{e.node}: {e.error}</p>)}
        <div className="table-wrap">
          <table data-testid="queries">
            <thead>
              <tr><th>Node</th><th>PID</th><th>User</th><th>State</th><th>Duration</th><th>Query</th><th /></tr>
            </thead>
            <tbody>
              {list.data?.queries.length === 0 && (
                <tr><td colSpan={7} className="muted">No active queries.</td></tr>
              )}
              {list.data?.queries.map((q) => (
                <tr key={`${q.node}/${q.pid}`} data-testid={`query-${q.node}-${q.pid}`}>
                  <td>{q.node}</td>
                  <td>{q.pid}</td>
                  <td>{q.usename ?? "–"}<div className="muted small">{q.application_name}</div></td>
                  <td>{q.state ?? "–"}{q.wait_event && <div className="muted small">{q.wait_event_type}: {q.wait_event}</div>}</td>
                  <td>{duration(q.duration_seconds)}</td>
                  <td><code className="sql">{q.query}</code></td>
                  <td className="actions">
                    {canCancel && <button className="small" onClick={() => signal(q, "cancel")}>Cancel</button>}
                    {canTerminate && <button className="small danger" onClick={() => signal(q, "terminate")}>Terminate</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <Section title="Top statements (pg_stat_statements)">
        <ErrorLine message={top.error} />
        {top.data && !top.data.available && <p className="muted">{top.data.reason}</p>}
        {top.data?.available && (
          <div className="table-wrap">
            <table>
              <thead><tr><th>Query</th><th>Calls</th><th>Total</th><th>Mean</th><th>Rows</th><th>Cache hit</th></tr></thead>
              <tbody>
                {top.data.statements.map((s) => (
                  <tr key={s.queryid}>
                    <td><code className="sql">{s.query}</code></td>
                    <td>{number(s.calls, 0)}</td>
                    <td>{duration(s.total_ms / 1000)}</td>
                    <td>{duration(s.mean_ms / 1000)}</td>
                    <td>{number(s.rows, 0)}</td>
                    <td>{percent(s.cache_hit_ratio)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
    </div>
  );
}

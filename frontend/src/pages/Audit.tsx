import { useState } from "react";
import { api } from "../api";
import { Badge, ErrorLine, Section } from "../components/Ui";
import { time } from "../format";
import { usePoll } from "../hooks";

const PAGE = 50;
const ACTIONS = ["", "login", "logout", "query_cancel", "query_terminate", "user_create", "user_update",
  "user_delete", "password_reset", "password_change", "backup_start", "backup"];

export function Audit() {
  const [offset, setOffset] = useState(0);
  const [action, setAction] = useState("");
  const page = usePoll(() => api.audit(PAGE, offset, action || undefined), 10000, [offset, action]);
  const total = page.data?.total ?? 0;
  return (
    <div className="page">
      <Section
        title="Audit log"
        actions={
          <select aria-label="action" value={action} onChange={(e) => { setAction(e.target.value); setOffset(0); }}>
            {ACTIONS.map((a) => <option key={a} value={a}>{a || "all actions"}</option>)}
          </select>
        }
      >
        <ErrorLine message={page.error} />
        <div className="table-wrap">
          <table data-testid="audit">
            <thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Result</th><th>From</th><th>Detail</th></tr></thead>
            <tbody>
              {page.data?.items.map((e) => (
                <tr key={e.id}>
                  <td>{time(e.at)}</td>
                  <td>{e.actor ?? "system"}</td>
                  <td>{e.action}</td>
                  <td>{e.target ?? "–"}</td>
                  <td><Badge ok={e.success}>{e.success ? "ok" : "failed"}</Badge></td>
                  <td>{e.client_addr ?? "–"}</td>
                  <td className="muted small">{Object.keys(e.detail).length ? JSON.stringify(e.detail) : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="pager">
          <button className="small" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Newer</button>
          <span className="muted">{total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : "no entries"}</span>
          <button className="small" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Older</button>
        </div>
      </Section>
    </div>
  );
}

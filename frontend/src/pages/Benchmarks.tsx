import { api } from "../api";
import { Badge, ErrorLine, Section, Stat } from "../components/Ui";
import { usePoll } from "../hooks";

function ms(seconds: number | null): string {
  return seconds === null ? "–" : `${(seconds * 1000).toFixed(1)} ms`;
}

// The last `exapg bench tpch` run of this stack: answers checked, per-query medians.
export function Benchmarks() {
  const latest = usePoll(api.tpchLatest, 30000);
  const run = latest.data;
  if (!run) {
    return (
      <div className="page">
        <Section title="TPC-H">
          <p className="muted" data-testid="bench-empty">
            {latest.error ?? "Loading…"} Load data with <code>exapg sample tpch --sf 0.01</code>, then run{" "}
            <code>exapg bench tpch</code>.
          </p>
        </Section>
      </div>
    );
  }
  const longest = Math.max(...run.results.map((r) => r.median ?? 0), 0.000001);
  return (
    <div className="page">
      <ErrorLine message={latest.error} />
      <div className="stats">
        <Stat label="Scale factor" value={run.scale_factor} testId="bench-sf" />
        <Stat label="Geometric mean" value={ms(run.geometric_mean)} testId="bench-gm" />
        <Stat label="Answers" value={<Badge ok={run.passed}>{run.passed ? (run.checked ? "all correct" : "not checked") : "failures"}</Badge>} testId="bench-passed" />
        <Stat label="Run at" value={new Date(run.started_at * 1000).toLocaleString()} />
      </div>
      <Section title="TPC-H queries (median of the runs)">
        <div className="table-wrap">
          <table data-testid="bench-queries">
            <thead><tr><th>Query</th><th>Answer</th><th>Median</th><th></th><th>Detail</th></tr></thead>
            <tbody>
              {run.results.map((r) => (
                <tr key={r.query}>
                  <td>Q{r.query}</td>
                  <td><Badge ok={r.status === "ok" ? true : r.status === "unchecked" || r.status === "unsupported" ? null : false}>{r.status}</Badge></td>
                  <td>{ms(r.median)}</td>
                  <td className="bar-cell"><span className="bar" style={{ width: `${((r.median ?? 0) / longest) * 100}%` }} /></td>
                  <td className="muted small">{r.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </div>
  );
}

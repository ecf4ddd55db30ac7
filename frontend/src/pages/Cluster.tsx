import { api } from "../api";
import { Badge, ErrorLine, Section } from "../components/Ui";
import { bytes, duration } from "../format";
import { usePoll } from "../hooks";
import type { Citus, NodeInfo, Rebalance } from "../types";

function Replication({ node }: { node: NodeInfo }) {
  if (node.upstream) {
    const u = node.upstream;
    return (
      <span>
        from {u.sender_host}:{u.sender_port} <Badge ok={u.status === "streaming"}>{u.status ?? "not streaming"}</Badge>
        <br />lag {bytes(u.lag_bytes)} · {duration(u.lag_seconds)}
      </span>
    );
  }
  if (node.downstream.length === 0) return <span className="muted">no standby</span>;
  return (
    <span>
      {node.downstream.map((d) => (
        <span key={d.name} className="block">
          → {d.name} <Badge ok={d.state === "streaming"}>{d.state}</Badge> {d.sync_state} · lag {bytes(d.lag_bytes)}
        </span>
      ))}
    </span>
  );
}

function RebalanceLine({ job }: { job: Rebalance }) {
  const share = job.tasks_total > 0 ? job.tasks_done / job.tasks_total : job.running ? 0 : 1;
  return (
    <div data-testid="rebalance" className="rebalance">
      Rebalance job {job.job_id}: <Badge ok={job.state === "finished" ? true : job.running ? null : false}>{job.state}</Badge>{" "}
      {job.tasks_done}/{job.tasks_total} shard moves
      <progress max={1} value={share} aria-label="rebalance progress" />
      {job.message && <div className="error small">{job.message}</div>}
    </div>
  );
}

function CitusSection({ citus }: { citus: Citus }) {
  return (
    <Section title={`Citus ${citus.version}: nodes and shards`}>
      {citus.rebalance && <RebalanceLine job={citus.rebalance} />}
      <div className="table-wrap">
        <table data-testid="citus-nodes">
          <thead>
            <tr><th>Node</th><th>Role</th><th>In metadata</th><th>Reachable</th><th>Takes shards</th><th>Shards</th><th>Data</th></tr>
          </thead>
          <tbody>
            {citus.nodes.map((n) => (
              <tr key={n.node_id} data-testid={`citus-node-${n.port}`}>
                <td><strong>{n.host}:{n.port}</strong></td>
                <td>{n.role}</td>
                <td><Badge ok={n.active}>{n.active ? "active" : "inactive"}</Badge></td>
                <td><Badge ok={n.reachable}>{n.reachable === null ? "unknown" : n.reachable ? "yes" : "no"}</Badge>{n.error && <div className="error small">{n.error}</div>}</td>
                <td>{n.should_have_shards ? "yes" : "no"}</td>
                <td>{n.shards}</td>
                <td>{bytes(n.bytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Section>
  );
}

export function ClusterPage() {
  const cluster = usePoll(api.cluster, 5000);
  const c = cluster.data;
  return (
    <div className="page">
      <ErrorLine message={cluster.error} />
      <Section title={c ? `Nodes (${c.mode} mode)` : "Nodes"}>
        <div className="table-wrap">
          <table data-testid="nodes">
            <thead>
              <tr><th>Node</th><th>Role</th><th>Address</th><th>Health</th><th>Version</th><th>Size</th><th>Conn.</th><th>Uptime</th><th>Replication</th></tr>
            </thead>
            <tbody>
              {c?.nodes.map((n) => (
                <tr key={n.name} data-testid={`node-${n.name}`}>
                  <td><strong>{n.name}</strong></td>
                  <td>{n.role}</td>
                  <td>{n.host}:{n.port}</td>
                  <td><Badge ok={n.healthy}>{n.state}</Badge>{n.error && <div className="error small">{n.error}</div>}</td>
                  <td>{n.version?.split(" ")[0] ?? "–"}</td>
                  <td>{bytes(n.size_bytes)}</td>
                  <td>{n.connections ?? "–"}</td>
                  <td>{duration(n.uptime_seconds)}</td>
                  <td><Replication node={n} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <ErrorLine message={c?.citus_error ?? null} />
      {c?.citus && <CitusSection citus={c.citus} />}
      <Section title="Services">
        <ErrorLine message={c?.services_error ?? null} />
        <div className="table-wrap">
          <table>
            <thead><tr><th>Service</th><th>Role</th><th>Port</th><th>PID</th><th>State</th><th>Detail</th></tr></thead>
            <tbody>
              {c?.services.map((s) => (
                <tr key={s.name}>
                  <td>{s.name}</td><td>{s.role}</td><td>{s.port ?? "–"}</td><td>{s.pid ?? "–"}</td>
                  <td><Badge ok={s.healthy}>{s.state}</Badge></td><td className="muted">{s.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </div>
  );
}

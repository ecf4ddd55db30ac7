import { api } from "../api";
import { Badge, ErrorLine, Section } from "../components/Ui";
import { bytes, duration, time } from "../format";
import { usePoll } from "../hooks";
import type { Citus, Cluster, NodeInfo, Rebalance, RoleChange } from "../types";

const OBSERVED = { primary: "writable primary", standby: "in recovery", down: "down" } as const;

function timeline(value: number | null): string {
  return value === null ? "timeline unknown" : `timeline ${value}`;
}

// Configured role (from the topology) against what the node is now.
function Roles({ node }: { node: NodeInfo }) {
  const ok = node.observed_role === "down" ? false : node.observed_role === node.configured_role;
  return (
    <span>
      <span className="muted small block">configured {node.configured_role}</span>
      <Badge ok={ok}>{OBSERVED[node.observed_role]}</Badge>
    </span>
  );
}

function RoleChangeLine({ change, className }: { change: RoleChange | null; className?: string }) {
  if (!change) return <p className={className} data-testid="role-change">No switchover or failover is recorded.</p>;
  return (
    <p className={className} data-testid="role-change">
      Newest recorded role change: {change.kind} from {change.from_server} to {change.to_server}{" "}
      (timeline {change.timeline}) at {time(change.at)}.
    </p>
  );
}

// Two writable primaries: say which is which, where pgBouncer sends clients, and the way back.
function SplitBrain({ cluster }: { cluster: Cluster }) {
  const target = cluster.pooler_target;
  const writable = cluster.split_brain_nodes;
  return (
    <div className="banner banner-bad" role="alert" data-testid="split-brain">
      <p>
        <strong>Split brain:</strong>{" "}
        {writable.map((n, i) => (
          <span key={n.name}>{i > 0 && (i === writable.length - 1 ? " and " : ", ")}<strong>{n.name}</strong> ({timeline(n.timeline)})</span>
        ))}{" "}
        {writable.length === 2 ? "both" : "all"} accept writes. pgBouncer sends clients to <strong>{target}</strong>.
      </p>
      {writable.filter((n) => n.name !== target).map((n) => (
        <p key={n.name}>
          Run <code>exapg rejoin {n.name}</code> to make {n.name} a standby again of {target}; what was written
          on {n.name} since the promotion is lost.
        </p>
      ))}
      <RoleChangeLine change={cluster.latest_role_change} />
    </div>
  );
}

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
      {c?.split_brain && <SplitBrain cluster={c} />}
      <ErrorLine message={cluster.error} />
      <Section title={c ? `Nodes (${c.mode} mode)` : "Nodes"}>
        <div className="table-wrap">
          <table data-testid="nodes">
            <thead>
              <tr><th>Node</th><th>Role</th><th>Configured / observed</th><th>Timeline</th><th>Address</th><th>Health</th><th>Version</th><th>Size</th><th>Conn.</th><th>Uptime</th><th>Replication</th></tr>
            </thead>
            <tbody>
              {c?.nodes.map((n) => (
                <tr key={n.name} data-testid={`node-${n.name}`}>
                  <td>
                    <strong>{n.name}</strong>
                    {n.name === c.pooler_target && <span className="muted small block">pgBouncer target</span>}
                  </td>
                  <td>{n.role}</td>
                  <td><Roles node={n} /></td>
                  <td>{n.timeline ?? "–"}</td>
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
        {c?.latest_role_change && !c.split_brain && <RoleChangeLine className="muted small" change={c.latest_role_change} />}
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

import { api } from "../api";
import { Chart } from "../components/Chart";
import { Badge, ErrorLine, Section, Stat } from "../components/Ui";
import { bytes, cell, duration, number, percent } from "../format";
import { usePoll } from "../hooks";

const CHARTS: Record<string, { title: string; format: (v: number) => string }> = {
  tps: { title: "Transactions / s", format: (v) => number(v) },
  connections: { title: "Connections", format: (v) => number(v, 0) },
  cache_hit_ratio: { title: "Cache hit ratio", format: (v) => percent(v) },
  replication_lag_seconds: { title: "Replication lag", format: (v) => duration(v) },
};

export function Dashboard() {
  const overview = usePoll(api.overview, 5000);
  const series = usePoll(() => api.timeseries(15), 10000);
  const o = overview.data;
  const lag = o?.replication.reduce((max, r) => Math.max(max, r.lag_seconds ?? 0), 0) ?? null;
  return (
    <div className="page">
      <ErrorLine message={overview.error} />
      {o?.coordinator_error && (
        <p className="error outage" role="alert" data-testid="outage">
          The coordinator does not answer ({o.coordinator_error}). Showing the nodes as last seen;
          changes are not possible until it is back.
        </p>
      )}
      {o && (
        <div className="stats" data-testid="overview">
          <Stat testId="stat-size" label={`Database ${o.database.name}`} value={bytes(o.database.size_bytes)} />
          <Stat testId="stat-connections" label="Connections"
                value={o.connections ? `${o.connections.total} / ${o.connections.max}` : "–"}
                hint={Object.entries(o.connections?.by_state ?? {}).map(([k, v]) => `${k} ${v}`).join(" · ")} />
          <Stat testId="stat-tps" label="Transactions / s" value={number(o.tps)} />
          <Stat testId="stat-cache" label="Cache hit ratio" value={percent(o.cache_hit_ratio)} />
          <Stat testId="stat-uptime" label="Uptime" value={duration(o.uptime_seconds)} />
          <Stat testId="stat-nodes" label="Nodes up" value={`${o.nodes.up} / ${o.nodes.total}`}
                hint={o.nodes.down > 0 ? <Badge ok={false}>{o.nodes.down} down</Badge> : <Badge ok>all up</Badge>} />
          <Stat testId="stat-lag" label="Replication lag"
                value={o.coordinator_error ? "–" : o.replication.length ? duration(lag) : "no standby"}
                hint={o.replication.map((r) => `${r.name}: ${bytes(r.lag_bytes)}`).join(" · ")} />
        </div>
      )}
      <Section title="Last 15 minutes">
        <ErrorLine message={series.error} />
        <div className="charts">
          {series.data?.series.filter((s) => CHARTS[s.name]).map((s) => (
            <Chart key={s.name} title={CHARTS[s.name].title} points={s.points}
                   format={CHARTS[s.name].format} source={s.source} />
          ))}
        </div>
      </Section>
      {o?.pgbouncer_pools && (
        <Section title="pgBouncer pools">
          <div className="table-wrap">
            <table>
              <thead>
                <tr><th>Database</th><th>User</th><th>Clients active</th><th>Waiting</th><th>Servers active</th><th>Idle</th><th>Mode</th></tr>
              </thead>
              <tbody>
                {o.pgbouncer_pools.map((p) => (
                  <tr key={`${p.database}/${p.user}`}>
                    <td>{cell(p.database)}</td><td>{cell(p.user)}</td><td>{cell(p.cl_active)}</td>
                    <td>{cell(p.cl_waiting)}</td><td>{cell(p.sv_active)}</td><td>{cell(p.sv_idle)}</td>
                    <td>{cell(p.pool_mode)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
    </div>
  );
}

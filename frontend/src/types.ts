// Shapes of the management API (see /docs). Kept by hand: a handful of small models.

export type Role = "viewer" | "operator" | "admin";

export interface User {
  username: string;
  role: Role;
  enabled: boolean;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface Token {
  access_token: string;
  token_type: string;
  expires_at: string;
  user: User;
  device_token?: string | null;
}

export interface Me {
  username: string;
  role: Role;
  expires_at: string;
}

export interface Overview {
  database: { name: string; size_bytes: number };
  connections: { total: number; max: number; by_state: Record<string, number> } | null;
  tps: number | null;
  cache_hit_ratio: number | null;
  uptime_seconds: number | null;
  nodes: {
    up: number;
    down: number;
    total: number;
    items: { name: string; role: string; healthy: boolean; state: string }[];
    checked_at: number | null;
  };
  replication: { name: string; state: string; lag_bytes: number | null; lag_seconds: number | null }[];
  pgbouncer_pools: Record<string, string | number | null>[] | null;
  sampled_at: number;
  coordinator_error?: string | null;
}

export interface Series {
  name: string;
  unit: string;
  source: string;
  points: [number, number | null][];
}

export interface Timeseries {
  minutes: number;
  series: Series[];
}

export interface Downstream {
  name: string;
  client_addr: string | null;
  state: string;
  sync_state: string;
  lag_bytes: number | null;
  lag_seconds: number | null;
}

export interface Upstream {
  status: string | null;
  sender_host: string | null;
  sender_port: number | null;
  slot: string | null;
  lag_bytes: number | null;
  lag_seconds: number | null;
}

export interface NodeInfo {
  name: string;
  role: string;
  host: string;
  port: number;
  healthy: boolean;
  state: string;
  version: string | null;
  size_bytes: number | null;
  uptime_seconds: number | null;
  connections: number | null;
  downstream: Downstream[];
  upstream: Upstream | null;
  error: string | null;
  checked_at: number;
}

export interface Service {
  name: string;
  role: string;
  port: number | null;
  pid: number | null;
  state: string;
  healthy: boolean;
  detail: string;
}

export interface CitusNode {
  node_id: number;
  host: string;
  port: number;
  role: string;
  active: boolean;
  should_have_shards: boolean;
  reachable: boolean | null;
  shards: number;
  bytes: number;
  error: string | null;
}

export interface Rebalance {
  job_id: number;
  state: string;
  running: boolean;
  tasks_total: number;
  tasks_done: number;
  started_at: number | null;
  finished_at: number | null;
  message: string | null;
}

export interface Citus {
  version: string;
  nodes: CitusNode[];
  rebalance: Rebalance | null;
}

export interface Cluster {
  mode: string;
  nodes: NodeInfo[];
  services: Service[];
  services_error: string | null;
  citus: Citus | null;
  citus_error: string | null;
}

export interface ActiveQuery {
  node: string;
  pid: number;
  usename: string | null;
  datname: string | null;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  query_start: string | null;
  duration_seconds: number | null;
  query: string | null;
}

export interface QueryList {
  queries: ActiveQuery[];
  errors: { node: string; error: string }[];
}

export interface Statement {
  queryid: string;
  query: string;
  calls: number;
  total_ms: number;
  mean_ms: number;
  rows: number;
  cache_hit_ratio: number | null;
}

export interface TopStatements {
  available: boolean;
  reason: string | null;
  statements: Statement[];
}

export interface SignalResult {
  node: string;
  pid: number;
  action: string;
  signalled: boolean;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string | null;
  action: string;
  target: string | null;
  success: boolean;
  client_addr: string | null;
  detail: Record<string, unknown>;
}

export interface AuditPage {
  items: AuditEntry[];
  total: number;
  limit: number;
  offset: number;
}

export interface BenchQuery {
  query: number;
  status: string; // ok, wrong, error, timeout, unchecked
  seconds: number[];
  median: number | null;
  rows: number | null;
  detail: string;
}

export interface BenchRun {
  scale_factor: number;
  checked: boolean;
  started_at: number;
  results: BenchQuery[];
  geometric_mean: number | null;
  passed: boolean;
  machine: Record<string, string | number>;
  settings: Record<string, string>;
}

// Shapes of the management API under the names the UI uses. They come from the API's
// OpenAPI document (schema.d.ts, written by `make types`): change the API's models and
// regenerate, never these lines.

import type { components } from "./schema";

type Schemas = components["schemas"];

export type Role = Schemas["UserRole"];
export type User = Schemas["UserPublic"];
export type Token = Schemas["TokenPublic"];
export type Me = Schemas["MePublic"];
export type LoginRequest = Schemas["LoginRequest"];
export type UserCreate = Schemas["UserCreate"];
export type UserUpdate = Schemas["UserUpdate"];
export type PasswordChange = Schemas["PasswordChange"];
export type PasswordReset = Schemas["PasswordReset"];

export type Overview = Schemas["OverviewPublic"];
export type Series = Schemas["SeriesPublic"];
export type Timeseries = Schemas["TimeseriesPublic"];

export type Downstream = Schemas["DownstreamPublic"];
export type Upstream = Schemas["UpstreamPublic"];
export type NodeInfo = Schemas["NodePublic"];
export type Service = Schemas["ServicePublic"];
export type CitusNode = Schemas["CitusNodePublic"];
export type Rebalance = Schemas["RebalancePublic"];
export type Citus = Schemas["CitusPublic"];
export type Writable = Schemas["WritablePublic"];
export type RoleChange = Schemas["RoleChangePublic"];
export type Cluster = Schemas["ClusterPublic"];

export type ActiveQuery = Schemas["ActiveQuery"];
export type QueryList = Schemas["QueryList"];
export type Statement = Schemas["Statement"];
export type TopStatements = Schemas["TopStatements"];
export type SignalResult = Schemas["SignalResult"];

export type AuditEntry = Schemas["AuditEntryPublic"];
export type AuditPage = Schemas["AuditPage"];

export type Backups = Schemas["BackupsPublic"];
export type Backup = Schemas["BackupPublic"];
export type BackupStanza = Schemas["StanzaPublic"];
export type RestorePoint = Schemas["RestorePointPublic"];
export type BackupJob = Schemas["BackupJobPublic"];
export type BackupCreate = Schemas["BackupCreate"];
export type BackupType = NonNullable<BackupCreate["type"]>;

// The one answer the API declares as a free-form object: the file `exapg bench tpch`
// writes (BenchRun in src/exapg/tpch/run.py), passed through as recorded. Its shape is
// kept here, by hand.
export interface BenchQuery {
  query: number;
  status: string; // ok, wrong, error, timeout, unchecked, unsupported
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

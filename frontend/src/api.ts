// The one HTTP client of the UI: base URL, token, errors. A 401 ends the session once,
// here, instead of in every page.

import type {
  AuditPage, BackupCreate, BackupJob, Backups, BackupType, BenchRun, Cluster, LoginRequest, Me, Overview, PasswordChange, PasswordReset, QueryList,
  Role, SignalResult, Timeseries, Token, TopStatements, User, UserCreate, UserUpdate,
} from "./types";

const BASE = (import.meta.env.VITE_API_URL ?? import.meta.env.REACT_APP_API_URL ?? "").replace(/\/$/, "");
const TOKEN_KEY = "exapg.token";
const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

let onUnauthorized: () => void = () => undefined;

export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

// A device token per user, kept across tabs and restarts: it proves this browser logged
// in as that user before, so failed logins of others (which throttle the user) do not
// keep them out. It opens no session by itself.
const DEVICE_KEY = "exapg.device.";

export const devices = {
  get: (username: string): string | null => localStorage.getItem(DEVICE_KEY + username),
  set(username: string, token: string | null | undefined): void {
    if (token) localStorage.setItem(DEVICE_KEY + username, token);
  },
};

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string | null): void {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

function describe(status: number, body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg}`)
      .join("; ");
  }
  return `request failed (HTTP ${status})`;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(BASE + path, {
      method, headers, signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "the management API does not answer");
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 204) return undefined as T;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/auth/login") onUnauthorized();
    throw new ApiError(response.status, describe(response.status, data));
  }
  return data as T;
}

const enc = encodeURIComponent;

export const api = {
  login: async (username: string, password: string) => {
    const device_token = devices.get(username) ?? undefined;
    const body = { username, password, device_token } satisfies LoginRequest;
    const token = await request<Token>("POST", "/api/auth/login", body);
    devices.set(username, token.device_token);
    return token;
  },
  logout: () => request<void>("POST", "/api/auth/logout"),
  me: () => request<Me>("GET", "/api/auth/me"),
  changePassword: (current_password: string, new_password: string) =>
    request<Token>("POST", "/api/auth/password", { current_password, new_password } satisfies PasswordChange),
  overview: () => request<Overview>("GET", "/api/dashboard/overview"),
  timeseries: (minutes: number) =>
    request<Timeseries>("GET", `/api/dashboard/timeseries?minutes=${minutes}`),
  cluster: () => request<Cluster>("GET", "/api/cluster"),
  tpchLatest: () => request<BenchRun>("GET", "/api/bench/tpch/latest"),
  queries: (includeIdle: boolean) =>
    request<QueryList>("GET", `/api/queries?include_idle=${includeIdle}`),
  top: (limit = 20) => request<TopStatements>("GET", `/api/queries/top?limit=${limit}`),
  signal: (node: string, pid: number, action: "cancel" | "terminate") =>
    request<SignalResult>("POST", `/api/queries/${enc(node)}/${pid}/${action}`),
  users: () => request<User[]>("GET", "/api/users"),
  createUser: (username: string, password: string, role: Role) =>
    request<User>("POST", "/api/users", { username, password, role } satisfies UserCreate),
  updateUser: (username: string, change: UserUpdate) =>
    request<User>("PATCH", `/api/users/${enc(username)}`, change),
  resetPassword: (username: string, password: string) =>
    request<void>("POST", `/api/users/${enc(username)}/password`, { password } satisfies PasswordReset),
  deleteUser: (username: string) => request<void>("DELETE", `/api/users/${enc(username)}`),
  audit: (limit: number, offset: number, action?: string) =>
    request<AuditPage>(
      "GET",
      `/api/audit?limit=${limit}&offset=${offset}${action ? `&action=${enc(action)}` : ""}`,
    ),
  backups: () => request<Backups>("GET", "/api/backups"),
  backupJob: () => request<BackupJob>("GET", "/api/backups/job"),
  startBackup: (type: BackupType) =>
    request<BackupJob>("POST", "/api/backups", { type } satisfies BackupCreate),
};

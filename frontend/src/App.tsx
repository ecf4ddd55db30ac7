import { useEffect, useState } from "react";
import { api, session, setUnauthorizedHandler } from "./api";
import { Account } from "./pages/Account";
import { Audit } from "./pages/Audit";
import { BackupsPage } from "./pages/Backups";
import { Benchmarks } from "./pages/Benchmarks";
import { ClusterPage } from "./pages/Cluster";
import { Dashboard } from "./pages/Dashboard";
import { Login } from "./pages/Login";
import { Queries } from "./pages/Queries";
import { Users } from "./pages/Users";
import type { Me, Role, Token } from "./types";

interface Page {
  id: string;
  label: string;
  minRole: Role;
}

const PAGES: Page[] = [
  { id: "dashboard", label: "Dashboard", minRole: "viewer" },
  { id: "cluster", label: "Cluster", minRole: "viewer" },
  { id: "queries", label: "Queries", minRole: "viewer" },
  { id: "benchmarks", label: "Benchmarks", minRole: "viewer" },
  { id: "backups", label: "Backups", minRole: "viewer" },
  { id: "users", label: "Users", minRole: "admin" },
  { id: "audit", label: "Audit log", minRole: "admin" },
];
const ACCOUNT: Page = { id: "account", label: "Account", minRole: "viewer" };
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

function currentPage(): string {
  return window.location.hash.replace(/^#\/?/, "") || "dashboard";
}

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(Boolean(session.token));
  const [page, setPage] = useState(currentPage());

  useEffect(() => {
    setUnauthorizedHandler(() => {
      session.set(null);
      setMe(null);
    });
    const onHash = () => setPage(currentPage());
    window.addEventListener("hashchange", onHash);
    if (session.token) {
      api.me().then(setMe).catch(() => session.set(null)).finally(() => setChecking(false));
    }
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  function onLogin(token: Token) {
    session.set(token.access_token);
    setMe({ username: token.user.username, role: token.user.role, expires_at: token.expires_at });
  }

  async function logout() {
    await api.logout().catch(() => undefined);
    session.set(null);
    setMe(null);
  }

  if (checking) return <main className="login"><p className="muted">Loading…</p></main>;
  if (!me) return <Login onLogin={onLogin} />;

  const allowed = PAGES.filter((p) => RANK[me.role] >= RANK[p.minRole]);
  const active = page === ACCOUNT.id ? ACCOUNT : allowed.find((p) => p.id === page) ?? allowed[0];
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="#/dashboard">ExaPG</a>
        <nav aria-label="main">
          {allowed.map((p) => (
            <a key={p.id} href={`#/${p.id}`} className={p.id === active.id ? "active" : ""}
               aria-current={p.id === active.id ? "page" : undefined}>{p.label}</a>
          ))}
        </nav>
        <div className="who">
          <a href="#/account" data-testid="whoami">{me.username} · {me.role}</a>
          <button className="small" onClick={logout}>Log out</button>
        </div>
      </header>
      <main>
        <h1 className="page-title">{active.label}</h1>
        {active.id === "dashboard" && <Dashboard />}
        {active.id === "cluster" && <ClusterPage />}
        {active.id === "queries" && <Queries role={me.role} />}
        {active.id === "benchmarks" && <Benchmarks />}
        {active.id === "backups" && <BackupsPage role={me.role} />}
        {active.id === "users" && <Users me={me.username} />}
        {active.id === "audit" && <Audit />}
        {active.id === "account" && <Account me={me} />}
      </main>
    </div>
  );
}

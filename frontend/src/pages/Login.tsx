import { useState, type FormEvent } from "react";
import { api } from "../api";
import type { Token } from "../types";
import { ErrorLine } from "../components/Ui";

export function Login({ onLogin }: { onLogin: (token: Token) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onLogin(await api.login(username.trim(), password));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form className="card login-card" onSubmit={submit}>
        <h1>ExaPG</h1>
        <p className="muted">Management console</p>
        <label>
          User name
          <input name="username" autoComplete="username" value={username} required
                 onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" value={password}
                 required onChange={(e) => setPassword(e.target.value)} />
        </label>
        <ErrorLine message={error} />
        <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}

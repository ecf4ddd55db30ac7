import { useState, type FormEvent } from "react";
import { api } from "../api";
import { MIN_PASSWORD, PASSWORD_RULE } from "../passwordRule";
import { Badge, ErrorLine, Section } from "../components/Ui";
import { time } from "../format";
import { usePoll } from "../hooks";
import type { Role, User } from "../types";

const ROLES: Role[] = ["viewer", "operator", "admin"];

function CreateUser({ onCreated }: { onCreated: (u: User) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      onCreated(await api.createUser(username.trim(), password, role));
      setUsername("");
      setPassword("");
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <form className="row-form" onSubmit={submit} data-testid="create-user">
      <input name="new-username" placeholder="user name" value={username} required
             pattern="[a-z][a-z0-9_.\-]{2,62}" title="3–63 characters: a–z, 0–9, _ . -"
             onChange={(e) => setUsername(e.target.value)} />
      <input name="new-password" type="password" placeholder="password" minLength={MIN_PASSWORD}
             aria-describedby="new-password-rule" title={PASSWORD_RULE}
             autoComplete="new-password" value={password} required onChange={(e) => setPassword(e.target.value)} />
      <select name="new-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
        {ROLES.map((r) => <option key={r}>{r}</option>)}
      </select>
      <button type="submit">Create user</button>
      <p className="muted hint" id="new-password-rule" data-testid="password-rule">Password: {PASSWORD_RULE}</p>
      <ErrorLine message={error} />
    </form>
  );
}

export function Users({ me }: { me: string }) {
  const users = usePoll(api.users, 30000);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  async function act(what: string, action: () => Promise<unknown>) {
    setError(null);
    try {
      await action();
      setNotice(what);
      users.refresh();
    } catch (err) {
      setError((err as Error).message);
    }
  }

  function resetPassword(u: User) {
    const password = window.prompt(`New password for ${u.username}.\n${PASSWORD_RULE}`);
    if (password) act(`password of ${u.username} reset`, () => api.resetPassword(u.username, password));
  }

  function remove(u: User) {
    if (window.confirm(`Delete user ${u.username}?`)) act(`${u.username} deleted`, () => api.deleteUser(u.username));
  }

  return (
    <div className="page">
      <Section title="New user">
        <CreateUser onCreated={(u) => { setNotice(`${u.username} created`); users.refresh(); }} />
      </Section>
      <Section title="Users">
        <ErrorLine message={users.error ?? error} />
        {notice && <p className="notice" role="status">{notice}</p>}
        <div className="table-wrap">
          <table data-testid="users">
            <thead><tr><th>User</th><th>Role</th><th>Status</th><th>Last login</th><th /></tr></thead>
            <tbody>
              {users.data?.map((u) => (
                <tr key={u.username} data-testid={`user-${u.username}`}>
                  <td><strong>{u.username}</strong>{u.username === me && <span className="muted"> (you)</span>}</td>
                  <td>
                    <select aria-label={`role of ${u.username}`} value={u.role}
                            onChange={(e) => act(`${u.username} is now ${e.target.value}`,
                              () => api.updateUser(u.username, { role: e.target.value as Role }))}>
                      {ROLES.map((r) => <option key={r}>{r}</option>)}
                    </select>
                  </td>
                  <td><Badge ok={u.enabled}>{u.enabled ? "enabled" : "disabled"}</Badge></td>
                  <td>{time(u.last_login_at)}</td>
                  <td className="actions">
                    <button className="small" onClick={() => act(`${u.username} ${u.enabled ? "disabled" : "enabled"}`,
                      () => api.updateUser(u.username, { enabled: !u.enabled }))}>
                      {u.enabled ? "Disable" : "Enable"}
                    </button>
                    <button className="small" onClick={() => resetPassword(u)}>Reset password</button>
                    <button className="small danger" onClick={() => remove(u)}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </div>
  );
}

import { useState, type FormEvent } from "react";
import { api, session } from "../api";
import { ErrorLine, Section } from "../components/Ui";
import { MIN_PASSWORD, PASSWORD_RULE } from "../passwordRule";
import type { Me } from "../types";

export function Account({ me }: { me: Me }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setNotice(null);
    if (next !== repeat) {
      setError("the new passwords differ");
      return;
    }
    try {
      // a new password ends every session of the user: this one continues on the new token
      session.set((await api.changePassword(current, next)).access_token);
      setCurrent("");
      setNext("");
      setRepeat("");
      setNotice("password changed: every other session of yours has ended");
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <div className="page">
      <Section title={`${me.username} (${me.role})`}>
        <p className="muted">Session valid until {new Date(me.expires_at).toLocaleString()}.</p>
        <form className="stack-form" onSubmit={submit} data-testid="change-password">
          <label>
            Current password
            <input type="password" name="current-password" autoComplete="current-password" required
                   value={current} onChange={(e) => setCurrent(e.target.value)} />
          </label>
          <label>
            New password
            <input type="password" name="new-password" autoComplete="new-password" minLength={MIN_PASSWORD} required
                   aria-describedby="password-rule" value={next} onChange={(e) => setNext(e.target.value)} />
          </label>
          <label>
            New password again
            <input type="password" name="repeat-password" autoComplete="new-password" minLength={MIN_PASSWORD} required
                   value={repeat} onChange={(e) => setRepeat(e.target.value)} />
          </label>
          <p className="muted hint" id="password-rule" data-testid="password-rule">{PASSWORD_RULE}</p>
          <ErrorLine message={error} />
          {notice && <p className="notice" role="status">{notice}</p>}
          <button type="submit">Change password</button>
        </form>
      </Section>
    </div>
  );
}

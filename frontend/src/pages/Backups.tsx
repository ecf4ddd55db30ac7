import { useEffect, useState, type FormEvent } from "react";
import { api } from "../api";
import { Badge, ErrorLine, Section } from "../components/Ui";
import { bytes, duration, time } from "../format";
import { usePoll } from "../hooks";
import type { Backup, BackupJob, BackupType, Role } from "../types";

const TYPES: { value: BackupType; label: string }[] = [
  { value: "incr", label: "incremental (since the last backup)" },
  { value: "diff", label: "differential (since the last full)" },
  { value: "full", label: "full" },
];
const JOB_POLL_MS = 2000;

type Row = Backup & { stanza: string };

function JobLine({ job }: { job: BackupJob }) {
  if (job.state === "running") {
    return (
      <p className="muted" role="status" data-testid="backup-job">
        {job.type} backup running since {time(job.started_at)}{job.step ? `: ${job.step}` : ""}…
      </p>
    );
  }
  if (job.state === "failed") {
    return <p className="error" role="alert" data-testid="backup-job">{job.type} backup failed: {job.error}</p>;
  }
  const labels = job.backups.map((b) => `${b.stanza} ${b.label} (${b.type})`).join(", ");
  return (
    <div data-testid="backup-job">
      <p className="notice" role="status">Backup done at {time(job.finished_at)}: {labels}</p>
      {job.notes.map((n) => <p key={n} className="muted hint">{n}</p>)}
    </div>
  );
}

function StartBackup({ running, onStarted }: { running: boolean; onStarted: (job: BackupJob) => void }) {
  const [type, setType] = useState<BackupType>("incr");
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setSending(true);
    try {
      onStarted(await api.startBackup(type));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setSending(false);
    }
  }

  return (
    <form className="row-form" onSubmit={submit} data-testid="start-backup">
      <select name="backup-type" aria-label="backup type" value={type}
              onChange={(e) => setType(e.target.value as BackupType)}>
        {TYPES.map((t) => <option key={t.value} value={t.value}>{t.label}</option>)}
      </select>
      <button type="submit" disabled={running || sending}>Start backup</button>
      <p className="muted hint">Backs up every primary node; the first backup of a node is always full.</p>
      <ErrorLine message={error} />
    </form>
  );
}

export function BackupsPage({ role }: { role: Role }) {
  const list = usePoll(api.backups, 30000);
  const [job, setJob] = useState<BackupJob | null>(null);
  const current = job ?? list.data?.job ?? null;
  const running = current?.state === "running";
  const refresh = list.refresh;

  // While a backup runs, follow it; when it ends, list the repository again.
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => {
      api.backupJob().then((next) => {
        setJob(next);
        if (next.state !== "running") refresh();
      }).catch(() => undefined);
    }, JOB_POLL_MS);
    return () => clearInterval(timer);
  }, [running, refresh]);

  const rows: Row[] = (list.data?.stanzas ?? [])
    .flatMap((s) => s.backups.map((b) => ({ ...b, stanza: s.stanza })))
    .sort((a, b) => b.stopped_at.localeCompare(a.stopped_at));

  return (
    <div className="page">
      {role === "admin" && (
        <Section title="New backup">
          <StartBackup running={running} onStarted={setJob} />
          {current && <JobLine job={current} />}
        </Section>
      )}
      <Section title="Backups">
        <ErrorLine message={list.error} />
        {role !== "admin" && current && <JobLine job={current} />}
        {list.data && (
          <p className="muted hint">
            Repository: {list.data.repository} ({list.data.repository_type}). Restores run from the command
            line: <code>exapg restore --to TIME | --to-name POINT | latest --yes</code>.
          </p>
        )}
        {list.data?.stanzas.map((s) => (
          <p key={s.stanza} data-testid={`restorable-${s.stanza}`}>
            <strong>{s.stanza}</strong>:{" "}
            {s.restorable.earliest_time
              ? `restorable from ${time(s.restorable.earliest_time)} to about ${time(s.restorable.latest_time)} ` +
                `(archived WAL ${s.restorable.wal_min ?? "–"} to ${s.restorable.wal_max ?? "–"})`
              : `no backup yet (${s.status})`}
          </p>
        ))}
        <div className="table-wrap">
          <table data-testid="backups">
            <thead>
              <tr><th>Stanza</th><th>Label</th><th>Type</th><th>Finished</th><th>Duration</th><th>Size</th>
                <th>In repository</th><th>WAL</th></tr>
            </thead>
            <tbody>
              {rows.map((b) => (
                <tr key={`${b.stanza}/${b.label}`} data-testid={`backup-${b.label}`}>
                  <td>{b.stanza}</td>
                  <td><code>{b.label}</code>{b.error && <> <Badge ok={false}>error</Badge></>}</td>
                  <td>{b.type}</td>
                  <td>{time(b.stopped_at)}</td>
                  <td>{duration(b.duration_seconds)}</td>
                  <td>{bytes(b.size_bytes)}</td>
                  <td>{bytes(b.repository_bytes)}</td>
                  <td className="muted small">{b.wal_start} – {b.wal_stop}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.data && rows.length === 0 && <p className="muted">No backup yet.</p>}
      </Section>
      <Section title="Restore points">
        <p className="muted hint">
          Named moments to restore to (<code>exapg backup restore-point NAME</code>; in cluster mode every backup ends
          with one, <code>backup-LABEL</code>).
        </p>
        <div className="table-wrap">
          <table data-testid="restore-points">
            <thead><tr><th>Name</th><th>Created</th><th>Coordinator LSN</th><th>Scope</th><th>Restorable</th></tr></thead>
            <tbody>
              {list.data?.restore_points.map((p) => (
                <tr key={`${p.name}/${p.created_at}`}>
                  <td><code>{p.name}</code></td>
                  <td>{time(p.created_at)}</td>
                  <td>{p.lsn}</td>
                  <td>{p.cluster ? "every node (Citus)" : "primary"}</td>
                  <td><Badge ok={p.restorable}>{p.restorable ? "yes" : "no backup before it"}</Badge></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.data && list.data.restore_points.length === 0 && <p className="muted">No restore point yet.</p>}
      </Section>
    </div>
  );
}

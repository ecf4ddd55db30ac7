"""Backup and restore throughput at TPC-H SF 1, and the time to switch over and fail over.

One private `ha` stack (coordinator + hot standby + pgBouncer, EXAPG_MEMORY_LIMIT as the
tests set it), TPC-H loaded by `exapg.tpch.load`, then a CHECKPOINT. Throughput is the
coordinator's data directory size (du, after the checkpoint) over the seconds taken.

Backup, alternating round by round: `exapg backup --type full` (pgBackRest as ExaPG
configures it), `pg_basebackup -X stream -c fast` (plain format, no compression) as the
replication role, and `cp -a` of the data directory of the stopped coordinator (only the
copy is timed; `exapg stop` and `exapg up` around it are not).

Restore, round by round: `exapg restore latest --yes` end to end (stops the stack,
restores the coordinator, clones the standby again, starts everything), pgBackRest's
restore alone into an empty directory (files only), and the plain peer: `cp -a` of the
pg_basebackup copy into an empty directory, then `pg_ctl start` on a private port with
archiving off, until it accepts connections (its recovery to the end of the backup), and
the lineitem count checked.

Switchover and failover: a writer thread inserts one row per transaction through
pgBouncer and notes the monotonic time of each COMMIT that returned. Switchover: the
longest gap between commits around `exapg switchover`. Failover: `kill -9` of the
primary's postmaster, `exapg failover` at once; from the kill to the next commit on the
new primary, through pgBouncer and, by a second writer, straight to the promoted node's
port. After each, every id whose COMMIT returned must be on the new primary.

    .venv/bin/python bench/backup/run.py [--sf 1] [--rounds 3] [--role-rounds 3]
    .venv/bin/python bench/backup/run.py --sections roles   # re-run one section into results.json
    .venv/bin/python bench/backup/run.py --report           # results.md from results.json + notes.md
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import psycopg  # noqa: E402

from exapg.postgres.binaries import find_binaries  # noqa: E402
from exapg.proc import ServiceUser, run  # noqa: E402
from exapg.tpch.load import load  # noqa: E402
from tests.conftest import free_port, new_state_dir, run_cli, stack_environment  # noqa: E402

MB = 1_000_000
DIRECT_IDS = 1_000_000_000  # ids of the writer that bypasses pgBouncer
NOTES = HERE / "notes.md"  # the commentary appended to results.md
USER = ServiceUser.resolve("postgres")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def cli(*args: str, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, env=env, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"exapg {' '.join(args)} failed: {result.stderr.strip()} {result.stdout.strip()}")
    return result


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = action()
    return time.perf_counter() - started, out


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def loadavg() -> list[float]:
    return list(os.getloadavg())


def scratch() -> Path:
    """An empty directory in /tmp (the data directory's file system), owned by postgres."""
    path = Path(tempfile.mkdtemp(prefix="exapg-bk-", dir="/tmp"))
    os.chown(path, USER.uid, USER.gid)
    return path


def remove(path: Path) -> None:
    subprocess.run(["rm", "-rf", str(path)], check=False)


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.root = Path(env["EXAPG_STATE_DIR"])

    @property
    def secrets(self) -> dict[str, str]:
        return json.loads((self.root / "secrets.json").read_text())

    def credentials(self) -> dict[str, str]:
        return json.loads(cli("credentials", "--json", env=self.env).stdout)

    def status(self) -> list[dict[str, Any]]:
        return json.loads(run_cli("status", "--json", env=self.env).stdout)

    def primary(self) -> dict[str, Any]:
        return next(n for n in self.status() if n["role"] == "coordinator")

    def datadir(self, node: str) -> Path:
        return self.root / "data" / node

    def healthy(self) -> bool:
        return all(n["healthy"] for n in self.status())

    def lineitem(self) -> int:
        with psycopg.connect(self.credentials()["coordinator_url"], autocommit=True) as conn:
            return int(conn.execute("SELECT count(*) FROM tpch.lineitem").fetchone()[0])  # type: ignore[index]


# -- backup ----------------------------------------------------------------------------------


def backup_pgbackrest(stack: Stack) -> dict[str, Any]:
    seconds, result = timed(lambda: cli("backup", "--type", "full", env=stack.env))
    listing = json.loads(cli("backup", "list", "--json", env=stack.env).stdout)
    newest = max((b for s in listing["stanzas"] for b in s["backups"]), key=lambda b: b["stopped"]) \
        if isinstance(listing, dict) and "stanzas" in listing else None
    return {"seconds": seconds, "printed": result.stdout.strip(),
            "repository_bytes": newest.get("repository_bytes") if newest else None,
            "size_bytes": newest.get("size_bytes") if newest else None,
            "pgbackrest_duration_seconds": newest.get("duration_seconds") if newest else None,
            "repository_total_bytes": du(stack.root / "backup")}


def basebackup(stack: Stack, target: Path) -> float:
    port = stack.primary()["port"]
    args = [find_binaries()("pg_basebackup"), "-D", target, "-X", "stream", "-c", "fast",
            "-h", "127.0.0.1", "-p", str(port), "-U", "replicator", "--no-password"]
    env = {"PGPASSWORD": stack.secrets["replication_password"]}
    seconds, _ = timed(lambda: run(args, timeout=3600, user=USER, env=env))
    return seconds


def backup_basebackup(stack: Stack, keep: Path | None) -> dict[str, Any]:
    """`keep`: where to leave the copy for the restore rounds (else it is removed)."""
    where = scratch()
    target = where / "base"
    seconds = basebackup(stack, target)
    size = du(target)
    if keep is not None:
        target.rename(keep)
    remove(where)
    return {"seconds": seconds, "copy_bytes": size}


def backup_copy(stack: Stack) -> dict[str, Any]:
    node = stack.primary()["name"]
    cli("stop", env=stack.env)
    where = scratch()
    try:
        seconds, _ = timed(lambda: subprocess.run(["cp", "-a", str(stack.datadir(node)), str(where / "copy")],
                                                  check=True))
        size = du(where / "copy")
    finally:
        remove(where)
        cli("up", env=stack.env)
    return {"seconds": seconds, "copy_bytes": size}


def backup_rounds(stack: Stack, rounds: int, datadir_bytes: int, keep: Path) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {"pgbackrest": [], "pg_basebackup": [], "cp": []}
    for i in range(rounds):
        samples["pgbackrest"].append(backup_pgbackrest(stack))
        samples["pg_basebackup"].append(backup_basebackup(stack, keep if i == rounds - 1 else None))
        samples["cp"].append(backup_copy(stack))
        log(f"backup round {i + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]['seconds']:.1f}s" for k, v in samples.items()))
    return summarise(samples, datadir_bytes)


def summarise(samples: dict[str, list[dict[str, Any]]], datadir_bytes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, runs in samples.items():
        med = statistics.median(r["seconds"] for r in runs)
        out[name] = {"median_seconds": med, "mb_per_second": datadir_bytes / MB / med, "runs": runs}
    return out


# -- restore ---------------------------------------------------------------------------------

RESTORE_FACTS = re.compile(r"(lsn|timeline|last commit|previous|target)[^\n]*", re.IGNORECASE)


def restore_exapg(stack: Stack, rows: int) -> dict[str, Any]:
    seconds, result = timed(lambda: cli("restore", "latest", "--yes", env=stack.env, timeout=3600))
    after = stack.lineitem()
    if after != rows:
        raise SystemExit(f"lineitem has {after} rows after the restore, {rows} before")
    for aside in (stack.root / "data").glob(".pre-restore-*"):
        remove(aside)
    return {"seconds": seconds, "printed": result.stdout.strip(), "lineitem_rows": after,
            "healthy_after": stack.healthy()}


def restore_pgbackrest_files(stack: Stack) -> dict[str, Any]:
    """pgBackRest's restore of the newest backup into an empty directory: the files only."""
    where = scratch()
    target = where / "restored"
    args = ["pgbackrest", f"--config={stack.root / 'conf' / 'pgbackrest.conf'}", "--stanza=coordinator",
            f"--pg1-path={target}", "restore"]
    try:
        seconds, _ = timed(lambda: run(args, timeout=3600, user=USER))
        size = du(target)
    finally:
        remove(where)
    return {"seconds": seconds, "restored_bytes": size}


def restore_plain(base: Path, rows: int, password: str) -> dict[str, Any]:
    """cp -a of the pg_basebackup copy into an empty directory, then start it on a private
    port and socket, archiving off (it must not write into the stack's stanza)."""
    bins = find_binaries()
    where = scratch()
    target, port = where / "data", free_port()
    opts = (f"-p {port} -k {where} -c listen_addresses='' -c archive_mode=off -c huge_pages=off "
            "-c cluster_name=bench-restore")
    try:
        copy_seconds, _ = timed(lambda: subprocess.run(["cp", "-a", str(base), str(target)], check=True))
        start_seconds, _ = timed(lambda: run([bins("pg_ctl"), "start", "-D", target, "-w", "-t", "600",
                                              "-l", where / "log", "-o", opts], timeout=900, user=USER))
        count = run([bins("psql"), "-h", where, "-p", str(port), "-U", "postgres", "-d", "exadb", "-Atc",
                     "SELECT count(*) FROM tpch.lineitem"], timeout=600, user=USER,
                    env={"PGPASSWORD": password}).stdout.strip()
        run([bins("pg_ctl"), "stop", "-D", target, "-m", "fast", "-w"], timeout=300, user=USER)
    finally:
        stop_leftover(target)
        remove(where)
    if int(count) != rows:
        raise SystemExit(f"the plain restore has {count} lineitem rows, {rows} expected")
    return {"seconds": copy_seconds + start_seconds, "copy_seconds": copy_seconds, "start_seconds": start_seconds,
            "lineitem_rows": int(count)}


def stop_leftover(datadir: Path) -> None:
    pidfile = datadir / "postmaster.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)


def restore_rounds(stack: Stack, rounds: int, datadir_bytes: int, base: Path, rows: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {"exapg_restore": [], "pgbackrest_files": [], "plain_cp_start": []}
    for i in range(rounds):
        samples["exapg_restore"].append(restore_exapg(stack, rows))
        samples["pgbackrest_files"].append(restore_pgbackrest_files(stack))
        samples["plain_cp_start"].append(restore_plain(base, rows, stack.secrets["postgres_password"]))
        log(f"restore round {i + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]['seconds']:.1f}s" for k, v in samples.items()))
    out = summarise(samples, datadir_bytes)
    for key in ("copy_seconds", "start_seconds"):
        out["plain_cp_start"][f"median_{key}"] = statistics.median(r[key] for r in samples["plain_cp_start"])
    return out


# -- switchover and failover -----------------------------------------------------------------


class Writer(threading.Thread):
    """One INSERT per transaction through pgBouncer; notes each COMMIT that returned, with the
    port of the server that committed it."""

    def __init__(self, url: str, first_id: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.next_id = first_id
        self.commits: list[tuple[int, float, int]] = []
        self.errors: list[tuple[float, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3, prepare_threshold=None)
                ident = self.next_id
                self.next_id += 1
                row = conn.execute("INSERT INTO bench_writes (id) VALUES (%s) RETURNING current_setting('port')::int",
                                   (ident,)).fetchone()
                self.commits.append((ident, time.monotonic(), int(row[0]) if row else 0))
            except psycopg.Error as exc:
                self.errors.append((time.monotonic(), str(exc).strip().splitlines()[0] if str(exc).strip() else ""))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)

    def times(self) -> list[float]:
        return [t for _, t, _ in self.commits]


def lost_ids(url: str, writer: Writer) -> int:
    ids = [i for i, _, _ in writer.commits]
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM bench_writes WHERE id = ANY(%s)", (ids,)).fetchone()[0]  # type: ignore[index]
    return len(ids) - int(found)


def with_writer(stack: Stack, first_id: int, action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], Writer]:
    writer = Writer(stack.credentials()["pgbouncer_url"], first_id)
    writer.start()
    time.sleep(3)
    try:
        result = action()
        time.sleep(5)
    finally:
        writer.stop()
    result["commits"] = len(writer.commits)
    result["client_errors"] = len(writer.errors)
    result["first_errors"] = sorted({e for _, e in writer.errors})[:5]
    result["lost_commits"] = lost_ids(stack.credentials()["pgbouncer_url"], writer)
    result["healthy_after"] = wait_healthy(stack)
    return result, writer


def wait_healthy(stack: Stack, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stack.healthy():
            return True
        time.sleep(1)
    return False


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without a commit that overlaps [start, end]."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b >= start and a <= end]
    return max(gaps, default=float("nan"))


def switchover(stack: Stack, first_id: int) -> tuple[dict[str, Any], Writer]:
    box: dict[str, float] = {}

    def act() -> dict[str, Any]:
        before = stack.primary()["name"]
        box["start"] = time.monotonic()
        result = cli("switchover", env=stack.env)
        box["end"] = time.monotonic()
        return {"from": before, "to": stack.primary()["name"], "command_seconds": box["end"] - box["start"],
                "printed": result.stdout.strip()}

    result, writer = with_writer(stack, first_id, act)
    result["writes_unavailable_seconds"] = longest_gap(writer.times(), box["start"], box["end"])
    return result, writer


def failover(stack: Stack, first_id: int) -> tuple[dict[str, Any], Writer]:
    box: dict[str, float] = {}

    def act() -> dict[str, Any]:
        node = stack.primary()["name"]
        pid = int((stack.datadir(node) / "postmaster.pid").read_text().split()[0])
        # A second writer straight to the standby's port: when the promoted node itself takes
        # writes, apart from how long pgBouncer keeps its clients waiting.
        target = next(n for n in stack.status() if n["role"] == "standby")
        direct = Writer(re.sub(r":\d+/", f":{target['port']}/", stack.credentials()["coordinator_url"]),
                        DIRECT_IDS + first_id)
        direct.start()
        box["kill"] = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        try:
            result = cli("failover", env=stack.env)
            box["end"] = time.monotonic()
        finally:
            direct.stop()
        first = [t for _, t, _ in direct.commits if t > box["kill"]]
        return {"from": node, "to": stack.primary()["name"], "command_seconds": box["end"] - started,
                "printed": result.stdout.strip(),
                "kill_to_first_direct_commit_seconds": first[0] - box["kill"] if first else None,
                "direct_lost_commits": lost_ids(stack.credentials()["coordinator_url"], direct)}

    result, writer = with_writer(stack, first_id, act)
    new_port = int(stack.primary()["port"])
    on_new = [t for _, t, port in writer.commits if t > box["kill"] and port == new_port]
    on_old = [t for _, t, port in writer.commits if t > box["kill"] and port != new_port]
    # The old primary's backends outlive its postmaster until the failover stops them: the
    # writer's session may go on committing there (and failover keeps those commits).
    result["kill_to_first_commit_seconds"] = on_new[0] - box["kill"] if on_new else None
    result["commits_on_orphaned_backend_after_kill"] = len(on_old)
    result["orphaned_backend_last_commit_seconds"] = on_old[-1] - box["kill"] if on_old else None
    result["writes_unavailable_seconds"] = longest_gap(writer.times(), box["kill"], box["end"])
    result["first_commit_before_command_returned"] = bool(on_new) and on_new[0] < box["end"]
    return result, writer


def role_rounds(stack: Stack, rounds: int) -> dict[str, Any]:
    with psycopg.connect(stack.credentials()["coordinator_url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_writes (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
    samples: dict[str, list[dict[str, Any]]] = {"switchover": [], "failover": []}
    first_id = 1
    for i in range(rounds):
        for name, fn in (("switchover", switchover), ("failover", failover)):
            result, writer = fn(stack, first_id)
            first_id = writer.next_id + 1
            samples[name].append(result)
            if result["lost_commits"] or not result["healthy_after"]:
                log(f"{name}: {result}")
            key = "writes_unavailable_seconds" if name == "switchover" else "kill_to_first_commit_seconds"
            log(f"{name} {i + 1}/{rounds}: {result['from']} -> {result['to']}, "
                f"command {result['command_seconds']:.1f}s, writes unavailable {result[key]}, "
                f"lost {result['lost_commits']}")
    return {
        "switchover": {"median_command_seconds": med(samples["switchover"], "command_seconds"),
                       "median_writes_unavailable_seconds": med(samples["switchover"], "writes_unavailable_seconds"),
                       "runs": samples["switchover"]},
        "failover": {"median_command_seconds": med(samples["failover"], "command_seconds"),
                     "median_kill_to_first_commit_seconds": med(samples["failover"], "kill_to_first_commit_seconds"),
                     "median_kill_to_first_direct_commit_seconds": med(samples["failover"],
                                                                       "kill_to_first_direct_commit_seconds"),
                     "median_writes_unavailable_seconds": med(samples["failover"], "writes_unavailable_seconds"),
                     "runs": samples["failover"]},
        "lost_commits": sum(r["lost_commits"] + r.get("direct_lost_commits", 0) for v in samples.values() for r in v),
    }


def med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


# -- report ----------------------------------------------------------------------------------


def mb(n: float | None) -> str:
    return "" if n is None else f"{n / MB:,.0f} MB"


def secs(n: float | None) -> str:
    return "" if n is None else f"{n:.2f} s"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def backup_table(r: dict[str, Any]) -> list[str]:
    b, size = r["backup"], r["setup"]["datadir_bytes"]
    own = {"pgbackrest": "size_bytes", "pg_basebackup": "copy_bytes", "cp": "copy_bytes"}
    names = {"pgbackrest": "`exapg backup --type full` (pgBackRest, lz4, 2 processes)",
             "pg_basebackup": "`pg_basebackup -X stream -c fast` (plain, uncompressed)",
             "cp": "`cp -a` of the stopped data directory"}
    rows = []
    for key, name in names.items():
        med_s = b[key]["median_seconds"]
        copied = statistics.median(run[own[key]] for run in b[key]["runs"] if run[own[key]] is not None)
        rows.append([name, secs(med_s), f"{size / MB / med_s:,.0f}", mb(copied), f"{copied / MB / med_s:,.0f}",
                     f"{med_s / b['pg_basebackup']['median_seconds']:.2f}x",
                     f"{med_s / b['cp']['median_seconds']:.2f}x"])
    return table(["method", "median time", "MB/s of the data directory", "what it reads or writes",
                  "MB/s of that", "time vs pg_basebackup", "time vs cp"], rows)


def restore_table(r: dict[str, Any]) -> list[str]:
    x, size = r["restore"], r["setup"]["datadir_bytes"]
    names = {"exapg_restore": "`exapg restore latest --yes`, end to end (stop, restore, replay, clone standby, up)",
             "pgbackrest_files": "pgBackRest's restore of the newest full backup into an empty directory (files only)",
             "plain_cp_start": "`cp -a` of the pg_basebackup copy into an empty directory + `pg_ctl start -w`"}
    rows = []
    for key, name in names.items():
        med_s = x[key]["median_seconds"]
        rows.append([name, secs(med_s), f"{size / MB / med_s:,.0f}",
                     f"{med_s / x['plain_cp_start']['median_seconds']:.2f}x"])
    return table(["method", "median time", "MB/s of the data directory", "time vs cp + start"], rows)


def roles_table(r: dict[str, Any]) -> list[str]:
    s, f = r["roles"]["switchover"], r["roles"]["failover"]
    rows = [["`exapg switchover`", secs(s["median_command_seconds"]), secs(s["median_writes_unavailable_seconds"]), "",
             "", str(sum(x["lost_commits"] for x in s["runs"]))],
            ["`kill -9` of the primary's postmaster, then `exapg failover`", secs(f["median_command_seconds"]),
             secs(f["median_writes_unavailable_seconds"]), secs(f["median_kill_to_first_commit_seconds"]),
             secs(f.get("median_kill_to_first_direct_commit_seconds")),
             str(sum(x["lost_commits"] + x.get("direct_lost_commits", 0) for x in f["runs"]))]]
    return table(["event", "median command time", "median longest gap between commits (through pgBouncer)",
                  "median kill to first commit on the new primary, through pgBouncer",
                  "the same, straight to the promoted node's port", "committed rows lost (all rounds)"], rows)


def role_runs(r: dict[str, Any]) -> list[str]:
    rows = []
    for kind in ("switchover", "failover"):
        for run_ in r["roles"][kind]["runs"]:
            rows.append([kind, f"{run_['from']} -> {run_['to']}", secs(run_["command_seconds"]),
                         secs(run_["writes_unavailable_seconds"]), secs(run_.get("kill_to_first_commit_seconds")),
                         secs(run_.get("kill_to_first_direct_commit_seconds")),
                         str(run_.get("commits_on_orphaned_backend_after_kill", "")), str(run_["client_errors"]),
                         f"{run_['commits']:,}", str(run_["lost_commits"]), str(run_["healthy_after"])])
    return table(["event", "nodes", "command", "longest gap", "kill to first commit on new primary",
                  "the same, direct",
                  "commits on the orphaned backend after the kill", "client errors", "commits seen", "lost",
                  "healthy after"], rows)


def load_table(r: dict[str, Any]) -> list[str]:
    rows = [[name, " / ".join(f"{v:.1f}" for v in la["start"]), " / ".join(f"{v:.1f}" for v in la["end"]),
             f"{la['seconds']:.0f} s"] for name, la in r["load_average"].items()]
    return table(["section", "load average at start (1/5/15 min)", "at end", "section took"], rows)


def pgbackrest_lines(r: dict[str, Any]) -> list[str]:
    runs = r["backup"]["pgbackrest"]["runs"]
    own = statistics.median(x["pgbackrest_duration_seconds"] for x in runs)
    repo = statistics.median(x["repository_bytes"] for x in runs)
    size = statistics.median(x["size_bytes"] for x in runs)
    return [f"pgBackRest's own duration of the backup (whole seconds, as it records it): median {own:.0f} s, the rest "
            "of the command's time is ExaPG's (starting Python, checks, the backups table for the metrics). "
            f"Each full backup takes {mb(repo)} in the repository for {mb(size)} of database files "
            f"({size / repo:.1f}:1 with lz4). One line `exapg backup` printed: `{runs[-1]['printed']}`."]


def restore_lines(r: dict[str, Any]) -> list[str]:
    x = r["restore"]
    last = x["exapg_restore"]["runs"][-1]["printed"].splitlines()[-1]
    healthy = all(run_["healthy_after"] for run_ in x["exapg_restore"]["runs"])
    return [f"The plain restore: copy {secs(x['plain_cp_start']['median_copy_seconds'])}, start (recovery to the end "
            f"of the backup) {secs(x['plain_cp_start']['median_start_seconds'])} (medians). Every stack healthy after "
            f"`exapg restore`: {'yes' if healthy else 'no'}. What it printed last: `{last}`"]


def rerun_lines(r: dict[str, Any]) -> list[str]:
    prev = r.get("roles_previous_run")
    if not prev:
        return []
    rerun = [x for x in r.get("reruns", []) if "roles" in x["sections"]][-1]
    why = rerun.get("why", "to add the writer that bypasses pgBouncer")
    return [f"These switchover and failover rounds are a run of this section alone ({rerun['started']} to "
            f"{rerun.get('finished', '?')}, on a stack of its own loaded the same way), made {why}. The run "
            "before it measured: switchover "
            f"command {secs(prev['switchover']['median_command_seconds'])}, longest gap "
            f"{secs(prev['switchover']['median_writes_unavailable_seconds'])}; failover command "
            f"{secs(prev['failover']['median_command_seconds'])}, kill to first commit through pgBouncer "
            f"{secs(prev['failover']['median_kill_to_first_commit_seconds'])}; nothing lost (medians of "
            f"{len(prev['failover']['runs'])}).", ""]


def render(r: dict[str, Any]) -> str:
    st, m = r["setup"], r["machine"]
    out = [
        f"# Backup, restore, switchover and failover at TPC-H SF {r['sf']:g}",
        "",
        f"Produced by `bench/backup/run.py --sf {r['sf']:g} --rounds {r['rounds']} --role-rounds {r['role_rounds']}` "
        f"({r['started']} to {r.get('finished', '?')}); raw figures in `{r['output']}`. Machine: {m['cpus']} cores, "
        f"{m['memory']}, {m['platform']}, {m['pgbackrest']}, PostgreSQL 15.",
        "",
        "The stack: `exapg up --mode ha` (coordinator + hot standby + pgBouncer, `EXAPG_MEMORY_LIMIT=1GB` as the "
        f"tests set it), TPC-H SF {r['sf']:g} loaded by `exapg.tpch.load` ({st['load_seconds']:.0f} s), "
        "then CHECKPOINT. "
        f"Database {mb(st['database_bytes'])} (`pg_database_size`), coordinator data directory "
        f"{mb(st['datadir_bytes'])} (`du -sb`, of which pg_wal {mb(st['pg_wal_bytes'])}); "
        f"lineitem {st['lineitem_rows']:,} rows. pgBackRest as ExaPG renders it: "
        f"`{'`, `'.join(st['pgbackrest_settings'])}` (lz4 at pgBackRest's default level for lz4, 1). "
        "Throughput is the data directory's size over the time taken, for every method alike; the "
        "second MB/s column divides what each method itself reads or writes instead.",
        "",
        "## Backup",
        "",
        f"Medians of {r['rounds']} rounds; in each round the three run one after the other.",
        "",
        *backup_table(r),
        "",
        *pgbackrest_lines(r),
        "",
        "## Restore",
        "",
        f"Medians of {r['rounds']} rounds. The lineitem row count is checked after each restore.",
        "",
        *restore_table(r),
        "",
        *restore_lines(r),
        "",
        "## Switchover and failover",
        "",
        f"Medians of {r['role_rounds']} rounds each (switchover and failover alternate, so the primary moves "
        "back and forth between the two nodes). A writer thread inserts one row per transaction "
        "(autocommit) through pgBouncer, reconnecting after any error, and notes the monotonic time of "
        "every COMMIT that returned and the port of the server that committed it. After each event every "
        "id whose COMMIT returned is looked up on the new primary.",
        "",
        *roles_table(r),
        "",
        *rerun_lines(r),
        "Every round:",
        "",
        *role_runs(r),
        "",
        "## Load on the machine",
        "",
        *load_table(r),
    ]
    return "\n".join(out) + "\n"


# -- main ------------------------------------------------------------------------------------


def setup(stack: Stack, sf: float) -> dict[str, Any]:
    cli("up", "--mode", "ha", env=stack.env)
    with psycopg.connect(stack.credentials()["coordinator_url"], autocommit=True) as conn:
        seconds, _ = timed(lambda: load(conn, sf, stage=lambda text: log(f"[load] {text}")))
        conn.execute("CHECKPOINT")
        db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    conf = (stack.root / "conf" / "pgbackrest.conf").read_text()
    return {"load_seconds": seconds, "database_bytes": int(db_bytes),
            "datadir_bytes": du(stack.datadir("coordinator")),
            "pg_wal_bytes": du(stack.datadir("coordinator") / "pg_wal"),
            "lineitem_rows": stack.lineitem(),
            "pgbackrest_settings": [line for line in conf.splitlines()
                                    if line.split("=")[0] in ("compress-type", "compress-level", "process-max",
                                                              "start-fast")]}


def section(results: dict[str, Any], name: str, action: Callable[[], Any]) -> None:
    before = loadavg()
    log(f"{name}: start, load average {before}")
    seconds, out = timed(action)
    results[name] = out
    results.setdefault("load_average", {})[name] = {"start": before, "end": loadavg(), "seconds": seconds}
    save(results)


def save(results: dict[str, Any]) -> None:
    (HERE / results["output"]).write_text(json.dumps(results, indent=2) + "\n")


def machine() -> dict[str, Any]:
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(), "memory": mem.split(":")[1].strip(),
            "pgbackrest": subprocess.run(["pgbackrest", "version"], capture_output=True, text=True).stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--role-rounds", type=int, default=3)
    parser.add_argument("--output", default="results.json")
    parser.add_argument("--report", action="store_true", help="only write results.md from the --output file")
    parser.add_argument("--why", default="", help="with --sections: what the re-run is for (in the report)")
    parser.add_argument("--sections", default="backup,restore,roles",
                        help="a subset re-runs only those into the existing --output file (the old ones kept "
                             "as <name>_previous_run)")
    args = parser.parse_args()
    if args.report:
        results = json.loads((HERE / args.output).read_text())
        (HERE / "results.md").write_text(render(results) + NOTES.read_text() if NOTES.exists() else render(results))
        return
    env = stack_environment(new_state_dir())
    stack = Stack(env)
    log(f"state dir {stack.root}")
    keep = scratch() / "basebackup"
    sections = args.sections.split(",")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    partial = set(sections) != {"backup", "restore", "roles"}
    results: dict[str, Any] = {"output": args.output, "sf": args.sf, "rounds": args.rounds,
                               "role_rounds": args.role_rounds, "machine": machine(), "started": now}
    if partial:
        results = {**json.loads((HERE / args.output).read_text()), "output": args.output}
        results.setdefault("reruns", []).append({"sections": sections, "started": now, "sf": args.sf,
                                                 "role_rounds": args.role_rounds, "rounds": args.rounds,
                                                 **({"why": args.why} if args.why else {})})
        for name in sections:
            results[f"{name}_previous_run"] = results.pop(name, None)
            results["load_average"][f"{name}_previous_run"] = results["load_average"].pop(name, None)
    try:
        section(results, "setup_rerun" if partial else "setup", lambda: setup(stack, args.sf))
        size, rows = results["setup"]["datadir_bytes"], results["setup"]["lineitem_rows"]
        if "backup" in sections:
            section(results, "backup", lambda: backup_rounds(stack, args.rounds, size, keep))
        if "restore" in sections:
            section(results, "restore", lambda: restore_rounds(stack, args.rounds, size, keep, rows))
        if "roles" in sections:
            section(results, "roles", lambda: role_rounds(stack, args.role_rounds))
        done = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if partial:
            results["reruns"][-1]["finished"] = done
        else:
            results["finished"] = done
        save(results)
    finally:
        run_cli("down", "--volumes", env=env, timeout=600)
        remove(keep.parent)
        remove(stack.root.parent)
    log("done")


if __name__ == "__main__":
    main()

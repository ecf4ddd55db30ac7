"""Time from `exapg up --mode ha` to a healthy stack, cold (with initdb) and warm.

The peer, run side by side in the same loop, is the same work done by hand with the
bare tools (initdb, pg_ctl, a slot, pg_basebackup, pgbouncer -d): the floor that any
tool standing up this topology pays. The ratio is ExaPG's time over the peer's.

    .venv/bin/python bench/startup/run.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from exapg.postgres.binaries import find_binaries  # noqa: E402
from exapg.proc import ServiceUser, run  # noqa: E402
from tests.conftest import new_state_dir, run_cli, stack_environment  # noqa: E402


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise SystemExit(f"exapg failed: {result.stderr.strip()}")


def exapg_run() -> tuple[float, float]:
    env = stack_environment(new_state_dir())
    try:
        cold = timed(lambda: (check(run_cli("up", "--mode", "ha", env=env)),
                              check(run_cli("health", env=env))))
        check(run_cli("stop", env=env))
        warm = timed(lambda: (check(run_cli("up", env=env)), check(run_cli("health", env=env))))
        return cold, warm
    finally:
        run_cli("down", "--volumes", env=env)


def peer_run() -> tuple[float, float]:
    """initdb + start + role/slot + pg_basebackup + start standby + pgbouncer, by hand."""
    env = stack_environment(new_state_dir())
    root = Path(env["EXAPG_STATE_DIR"])
    user = ServiceUser.resolve("postgres")
    user.make_dir(root, 0o700)
    bins = find_binaries()
    primary, standby = root / "primary", root / "standby"
    pport, sport, bport = env["COORDINATOR_PORT"], env["STANDBY_PORT"], env["PGBOUNCER_PORT"]
    pw = root / "pw"
    user.write_file(pw, "peer-password-123\n")
    user.write_file(root / "pgpass", "*:*:*:*:peer-password-123\n")
    pgenv = {"PGPASSFILE": str(root / "pgpass")}

    def sh(*args: object, **kw) -> None:
        run([str(a) for a in args], timeout=120, user=user, env=pgenv, **kw)

    def start(datadir: Path, port: str) -> None:
        sh(bins("pg_ctl"), "start", "-D", datadir, "-w", "-l", root / f"{datadir.name}.log",
           "-o", f"-p {port} -k {root}")

    def cold() -> None:
        sh(bins("initdb"), "-D", primary, "-U", "postgres", "--pwfile", pw,
           "--auth=scram-sha-256")
        start(primary, pport)
        sh(bins("psql"), "-h", "127.0.0.1", "-p", pport, "-U", "postgres", "-c",
           "SELECT pg_create_physical_replication_slot('s1')")
        sh(bins("pg_basebackup"), "-D", standby, "-h", "127.0.0.1", "-p", pport, "-U", "postgres",
           "-X", "stream", "-S", "s1", "-R", "-c", "fast")
        start(standby, sport)
        (root / "pgb.ini").write_text(
            f"[databases]\n* = host=127.0.0.1 port={pport}\n[pgbouncer]\nlisten_addr=127.0.0.1\n"
            f"listen_port={bport}\nunix_socket_dir={root}\nauth_type=trust\n"
            f"auth_file={root / 'users'}\npidfile={root / 'pgb.pid'}\nlogfile={root / 'pgb.log'}\n")
        (root / "users").write_text('"postgres" "x"\n')
        shutil.chown(root / "pgb.ini", "postgres")
        shutil.chown(root / "users", "postgres")
        sh("pgbouncer", "-d", root / "pgb.ini")
        for port in (pport, sport, bport):
            sh(bins("pg_isready"), "-h", "127.0.0.1", "-p", port, "-U", "postgres")

    def stop() -> None:
        sh("pkill", "-f", f"pgbouncer -d {root}")
        for datadir in (primary, standby):
            sh(bins("pg_ctl"), "stop", "-D", datadir, "-m", "fast", "-w")

    def warm() -> None:
        start(primary, pport)
        start(standby, sport)
        sh("pgbouncer", "-d", root / "pgb.ini")
        for port in (pport, sport, bport):
            sh(bins("pg_isready"), "-h", "127.0.0.1", "-p", port, "-U", "postgres")

    try:
        c = timed(cold)
        stop()
        time.sleep(0.2)
        w = timed(warm)
        stop()
        return c, w
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"exapg_cold": [], "exapg_warm": [], "peer_cold": [], "peer_warm": []}
    for i in range(args.runs):
        for name, fn in (("exapg", exapg_run), ("peer", peer_run)):
            cold, warm = fn()
            samples[f"{name}_cold"].append(cold)
            samples[f"{name}_warm"].append(warm)
        print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in samples.items()))
    med = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "machine": {"cpus": len(__import__("os").sched_getaffinity(0)), "platform": platform.platform()},
        "runs": args.runs,
        "median_seconds": med,
        "ratio_cold": med["exapg_cold"] / med["peer_cold"],
        "ratio_warm": med["exapg_warm"] / med["peer_warm"],
        "samples": samples,
        "goal": {"cold_seconds": 10, "warm_seconds": 3},
    }
    (HERE / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_seconds", "ratio_cold", "ratio_warm")}, indent=2))


if __name__ == "__main__":
    main()

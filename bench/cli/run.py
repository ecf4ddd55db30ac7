"""Start-up of the `exapg` command in two checkouts, side by side: `exapg --help`,
`exapg status` and `exapg health`.

Two figures per command:
  import   the `python -X importtime` total: the top-level imports' cumulative times
           summed (the interpreter's own start-up imports included)
  process  the whole process, without -X importtime: wall time, and its CPU time
           (user + system), which the load of a shared machine disturbs less

status and health run against a stack that was never set up (they stop once the runtime
is loaded and finds no state) and against a running standalone stack that this script
starts with the candidate (private state dir, free ports) and removes at the end.

Each round runs every command once in each checkout, the side that goes first
alternating, so both see the same machine load; and the bare interpreter
(`python -c pass`), the floor any Python command pays: the peer.

The commands run with their bytecode cached, as an installed exapg does: the measured
processes get no PYTHONDONTWRITEBYTECODE, and one unmeasured run per command and checkout
writes the `__pycache__` files first. (Without a cache every start compiles ExaPG's
modules again, and the imports of the modules a command loads cost several times more.)

    .venv/bin/python bench/cli/run.py --baseline ../cli-base [--candidate .] [--rounds 9]

Every checkout needs its own `make setup`. Writes bench/cli/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import cli_environment, new_state_dir, run_cli, stack_environment  # noqa: E402

# name -> (arguments, which stack, extra environment)
COMMANDS: dict[str, tuple[list[str], str, dict[str, str]]] = {
    "--help": (["--help"], "none", {}),
    "--help, plain (TYPER_USE_RICH=0)": (["--help"], "none", {"TYPER_USE_RICH": "0"}),
    "status, no stack": (["status"], "none", {}),
    "health, no stack": (["health"], "none", {}),
    "status, running stack": (["status"], "running", {}),
    "health, running stack": (["health"], "running", {}),
}
BARE = "python -c pass"


def import_total_ms(stderr: str) -> float:
    """The sum of the top-level imports' cumulative times in -X importtime's report."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if not name.startswith("  "):  # one space: imported by no other module
            total += int(cumulative)
    return total / 1000


def run(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """The finished process, its wall time and its CPU time (seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cached(env: dict[str, str]) -> dict[str, str]:
    """The environment without PYTHONDONTWRITEBYTECODE: an installed exapg has its bytecode."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(checkout: Path, args: list[str], env: dict[str, str]) -> dict[str, float]:
    python, exapg = str(checkout / ".venv" / "bin" / "python"), str(checkout / ".venv" / "bin" / "exapg")
    traced, _, _ = run([python, "-X", "importtime", exapg, *args], env)
    done, wall, cpu = run([python, exapg, *args], env)
    if done.returncode != traced.returncode:
        raise SystemExit(f"{checkout}: exapg {' '.join(args)} exited {done.returncode}, then {traced.returncode}")
    return {"import_ms": import_total_ms(traced.stderr), "process_ms": wall * 1000, "cpu_ms": cpu * 1000,
            "exit": done.returncode}


def measure_bare(python: str, env: dict[str, str]) -> dict[str, float]:
    traced, _, _ = run([python, "-X", "importtime", "-c", "pass"], env)
    _, wall, cpu = run([python, "-c", "pass"], env)
    return {"import_ms": import_total_ms(traced.stderr), "process_ms": wall * 1000, "cpu_ms": cpu * 1000, "exit": 0}


def commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()


def summary(samples: list[dict[str, float]]) -> dict[str, float]:
    return {f"{figure}_median": statistics.median(s[figure] for s in samples)
            for figure in ("import_ms", "process_ms", "cpu_ms")} | {
        f"{figure}_min": min(s[figure] for s in samples) for figure in ("import_ms", "process_ms", "cpu_ms")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    sides = {"baseline": args.baseline.resolve(), "candidate": args.candidate.resolve()}
    envs = {"none": stack_environment(new_state_dir()), "running": stack_environment(new_state_dir())}
    up = run_cli("up", "--mode", "standalone", env=envs["running"], timeout=300)
    if up.returncode != 0:
        raise SystemExit(f"exapg up failed: {up.stderr.strip()}")
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {side: [] for side in sides} for name in COMMANDS}
    samples[BARE] = {"interpreter": []}
    loads = [os.getloadavg()]
    started = time.time()
    try:
        for checkout in sides.values():  # writes the bytecode caches
            for cli_args, stack, extra in COMMANDS.values():
                measure(checkout, cli_args, cached({**cli_environment(envs[stack]), **extra}))
        for round_no in range(args.rounds):
            order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
            for side in order:
                for name, (cli_args, stack, extra) in COMMANDS.items():
                    env = cached({**cli_environment(envs[stack]), "COLUMNS": "200", **extra})
                    samples[name][side].append(measure(sides[side], cli_args, env))
            samples[BARE]["interpreter"].append(measure_bare(str(sides["candidate"] / ".venv" / "bin" / "python"),
                                                             cached(dict(os.environ))))
            loads.append(os.getloadavg())
            shown = ("--help", "status, running stack")
            print(f"round {round_no + 1}/{args.rounds}, load {loads[-1][0]:.1f}, import before/after: " + ", ".join(
                f"{name} {samples[name]['baseline'][-1]['import_ms']:.0f}/"
                f"{samples[name]['candidate'][-1]['import_ms']:.0f} ms" for name in shown))
    finally:
        run_cli("down", "--volumes", env=envs["running"])
        for env in envs.values():
            shutil.rmtree(Path(env["EXAPG_STATE_DIR"]).parent, ignore_errors=True)
    medians = {name: {side: summary(runs) for side, runs in by_side.items()} for name, by_side in samples.items()}
    bare = medians[BARE]["interpreter"]
    result = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "python": platform.python_version()},
        "method": "each round: every command once per checkout (the side going first alternating) and the bare "
                  "interpreter once; import = python -X importtime total (top-level cumulative times summed); "
                  "process = wall and CPU time of a run without -X importtime; medians over the rounds; "
                  "bytecode cached (written by one unmeasured run per command first)",
        "baseline": {"path": str(sides["baseline"]), "commit": commit(sides["baseline"])},
        "candidate": {"path": str(sides["candidate"]), "commit": commit(sides["candidate"])},
        "rounds": args.rounds,
        "seconds": round(time.time() - started),
        "load_average_1_5_15": {"start": loads[0], "end": loads[-1], "after_each_round": loads[1:]},
        "goal": {"import_ms": 200},
        "median": medians,
        "ratio_process_to_bare_interpreter": {
            name: {side: row["process_ms_median"] / bare["process_ms_median"] for side, row in by_side.items()}
            for name, by_side in medians.items() if name != BARE},
        "candidate_over_baseline": {
            name: {figure: by_side["candidate"][f"{figure}_median"] / by_side["baseline"][f"{figure}_median"]
                   for figure in ("import_ms", "process_ms", "cpu_ms")}
            for name, by_side in medians.items() if name != BARE},
        "samples": samples,
    }
    (HERE / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, by_side in medians.items():
        for side, row in by_side.items():
            print(f"{name:34} {side:11} import {row['import_ms_median']:7.1f} ms  process "
                  f"{row['process_ms_median']:7.1f} ms  cpu {row['cpu_ms_median']:7.1f} ms")


if __name__ == "__main__":
    main()

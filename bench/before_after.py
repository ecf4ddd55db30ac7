"""Two checkouts of ExaPG measured side by side with the same bench scripts, alternately.

For a change that must not make anything slower: each round runs `bench/<name>/run.py` in
the baseline checkout, then in the candidate, so both see the same machine load; each
bench already reports ExaPG against its own peer, and the ratio of ratios cancels most of
what the machine does meanwhile. Every checkout needs its own `make setup`.

    .venv/bin/python bench/before_after.py --baseline ../before --candidate . \\
        [--rounds 3] [--benches startup,api,exporter] [--out bench/before-after]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

# bench -> (arguments, {figure: how to read it from results.json}); lower is better for all.
BENCHES: dict[str, tuple[list[str], dict[str, Callable[[dict], float]]]] = {
    "startup": (["--runs", "1"], {
        "cold up + health, s": lambda r: r["median_seconds"]["exapg_cold"],
        "warm up + health, s": lambda r: r["median_seconds"]["exapg_warm"],
        "cold, ratio to the bare peer": lambda r: r["ratio_cold"],
        "warm, ratio to the bare peer": lambda r: r["ratio_warm"],
    }),
    "api": (["--seconds", "5", "--rounds", "2"], {
        "overview p99, ms": lambda r: r["overview"]["p99_ms_median_round"],
        "overview median, ms": lambda r: r["overview"]["median_ms"],
        "overview p99 / health p99": lambda r: r["ratio_p99_overview_over_health"],
    }),
    "exporter": (["--scrapes", "300"], {
        "scrape median, ms": lambda r: r["results"]["exapg"]["median_ms"],
        "scrape p99, ms": lambda r: r["results"]["exapg"]["p99_ms"],
        "scrape median / postgres_exporter's": lambda r: (
            r["results"]["exapg"]["median_ms"] / r["results"]["postgres_exporter"]["median_ms"]),
    }),
}


def run_bench(checkout: Path, name: str, args: list[str], keep: Path) -> dict:
    """One run of a bench in a checkout; its results.json is copied to `keep` (the
    summary, `results.json` beside them, holds every figure of every run)."""
    script = checkout / "bench" / name / "run.py"
    started = time.monotonic()
    done = subprocess.run([str(checkout / ".venv" / "bin" / "python"), str(script), *args], cwd=checkout,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkout / "bench" / name / "results.json", keep)
    print(f"  {checkout.name}: {name} in {time.monotonic() - started:.0f} s")
    return json.loads(keep.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--benches", default=",".join(BENCHES))
    parser.add_argument("--out", type=Path, default=HERE / "before-after")
    args = parser.parse_args()
    sides = {"baseline": args.baseline.resolve(), "candidate": args.candidate.resolve()}
    figures: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name in args.benches.split(","):
        bench_args, readers = BENCHES[name]
        figures[name] = {figure: {side: [] for side in sides} for figure in readers}
        for round_no in range(args.rounds):
            print(f"{name}, round {round_no + 1}/{args.rounds}")
            for side, checkout in sides.items():
                result = run_bench(checkout, name, bench_args, args.out / f"{name}-{side}-{round_no + 1}.json")
                for figure, read in readers.items():
                    figures[name][figure][side].append(read(result))
    summary = {name: {figure: {**{f"{side}_median": statistics.median(v) for side, v in by_side.items()},
                               "candidate_over_baseline": statistics.median(by_side["candidate"])
                               / statistics.median(by_side["baseline"]),
                               "samples": by_side}
                      for figure, by_side in per.items()}
               for name, per in figures.items()}
    record = {"baseline": str(sides["baseline"]), "candidate": str(sides["candidate"]),
              "rounds": args.rounds, "benches": summary}
    (args.out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    for name, per in summary.items():
        for figure, row in per.items():
            print(f"{name:9} {figure:40} {row['baseline_median']:9.3f} {row['candidate_median']:9.3f} "
                  f"{row['candidate_over_baseline']:6.2f}x")


if __name__ == "__main__":
    main()

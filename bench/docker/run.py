"""ExaPG on Docker, measured side by side on this machine.

1. Image sizes: every ExaPG image, against the seed's design (`FROM postgres:15` plus the
   Citus files its builder copies). No public registry is reachable here, so the
   official postgres:15 is stood in for by the `base` stage of docker/Dockerfile: Debian
   bookworm-slim with Debian's postgresql-15, which is what postgres:15 is made of
   (bookworm-slim and PostgreSQL 15 from apt); the seed's image is that plus Citus.
2. `exapg up --backend docker --mode ha` until `exapg health` passes, cold (images
   present, no containers or volumes) and warm (after `exapg stop`), beside the local
   runtime's `exapg up --mode ha` measured the same way in the same loop.

    .venv/bin/python bench/docker/run.py [--runs 3]       (make images first)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import distinct_free_ports, new_state_dir, run_cli, stack_environment  # noqa: E402
from tests.docker.engine import docker, free_prefix, project_env  # noqa: E402

IMAGES = ["exapg/postgres", "exapg/pgbouncer", "exapg/replication-exporter", "exapg/mgmt-backend",
          "exapg/mgmt-frontend"]
BASE_STAGE = "exapg/bench-postgres15-stand-in"
MB = 1_000_000


def size(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout)


def citus_bytes(image: str) -> int:
    """Size of the layer that copies the builder's output (Citus) into exapg/postgres."""
    for line in docker("history", "--no-trunc", "--format", "{{.Size}}|{{.CreatedBy}}", image,
                       "--human=false").stdout.splitlines():
        bytes_, _, step = line.partition("|")
        if "COPY dir:" in step and int(bytes_) > MB:
            return int(bytes_)
    return 0


def sizes() -> dict[str, float]:
    base = docker("image", "inspect", "--format", '{{index .Config.Labels "org.exapg.base"}}',
                  "exapg/postgres:latest").stdout.strip() or "exapg/debian:bookworm"
    subprocess.run(["docker", "build", "-q", "--target", "base", "--build-arg", f"BASE_IMAGE={base}",
                    "-t", BASE_STAGE, "-f", "docker/Dockerfile", "."], cwd=REPO, check=True,
                   capture_output=True, timeout=1800)
    found = {name: size(f"{name}:latest") / MB for name in IMAGES}
    found["postgres:15 stand-in (bookworm-slim + postgresql-15)"] = size(BASE_STAGE) / MB
    found["seed design (postgres:15 + Citus)"] = (size(BASE_STAGE) + citus_bytes("exapg/postgres:latest")) / MB
    found["citus files"] = citus_bytes("exapg/postgres:latest") / MB
    return found


def timed(*steps) -> float:
    start = time.perf_counter()
    for step in steps:
        step()
    return time.perf_counter() - start


def ok(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise SystemExit(f"exapg failed: {(result.stderr or result.stdout).strip()[-500:]}")


def until_healthy(env: dict[str, str], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while run_cli("health", env=env).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit("the stack did not become healthy")
        time.sleep(0.5)


def docker_run() -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="exapg-bench-") as tmp:
        names = ("COORDINATOR_PORT", "STANDBY_PORT", "PGBOUNCER_PORT", "EXPORTER_PORT", "WORKER1_PORT",
                 "WORKER2_PORT")
        ports = dict(zip(names, distinct_free_ports(len(names)), strict=True))
        env = project_env(free_prefix(), ports, COMPOSE_PROJECT_NAME=f"exapgbench{os.getpid()}",
                          EXAPG_DATA_DIR=f"{tmp}/data", EXAPG_CONFIG_DIR=f"{tmp}/config",
                          EXAPG_LOG_DIR=f"{tmp}/logs")
        env = {**os.environ, **env, "EXAPG_BACKEND": "docker", "EXAPG_ENV_FILE": "/nonexistent/.env"}
        try:
            cold = timed(lambda: ok(run_cli("up", "--mode", "ha", env=env)), lambda: until_healthy(env))
            ok(run_cli("stop", env=env))
            warm = timed(lambda: ok(run_cli("up", "--mode", "ha", env=env)), lambda: until_healthy(env))
            return cold, warm
        finally:
            run_cli("down", "--volumes", env=env)
            subprocess.run(["rm", "-rf", tmp], check=False)


def local_run() -> tuple[float, float]:
    env = stack_environment(new_state_dir())
    try:
        cold = timed(lambda: ok(run_cli("up", "--mode", "ha", env=env)), lambda: until_healthy(env))
        ok(run_cli("stop", env=env))
        warm = timed(lambda: ok(run_cli("up", env=env)), lambda: until_healthy(env))
        return cold, warm
    finally:
        run_cli("down", "--volumes", env=env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if docker("info", check=False).returncode != 0:
        raise SystemExit("no Docker engine answers: run make images first (it starts one as root)")
    samples: dict[str, list[float]] = {"docker_cold": [], "docker_warm": [], "local_cold": [], "local_warm": []}
    for i in range(args.runs):
        for name, fn in (("docker", docker_run), ("local", local_run)):
            cold, warm = fn()
            samples[f"{name}_cold"].append(cold)
            samples[f"{name}_warm"].append(warm)
        print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in samples.items()))
    med = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "engine": docker("version", "--format", "{{.Server.Version}}").stdout.strip()},
        "image_megabytes": {k: round(v, 1) for k, v in sizes().items()},
        "runs": args.runs,
        "median_seconds": med,
        "ratio_cold_docker_over_local": med["docker_cold"] / med["local_cold"],
        "ratio_warm_docker_over_local": med["docker_warm"] / med["local_warm"],
        "samples": samples,
    }
    (HERE / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("image_megabytes", "median_seconds", "ratio_cold_docker_over_local",
                                              "ratio_warm_docker_over_local")}, indent=2))


if __name__ == "__main__":
    main()

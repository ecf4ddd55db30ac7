"""The blue-green switch of docs/docker.md ("Blue-green") on the real engine: two projects
side by side (own names, subnets, host ports, data directories), each step a line of the
docs run by bash from the repository root: `exapg` commands with EXAPG_BACKEND=docker and
EXAPG_ENV_FILE naming each colour's env file, the data moved by pg_dump | psql through
`exapg compose prod exec -T`, clients switched to green's pgBouncer, blue stopped with its
data kept and started again.

The env files are docker/env/{blue,green}.env.example with this run's project names, free
ports, subnets, temporary directories and secrets, written to a temporary directory (BLUE
and GREEN point there instead of docker/env/). Light on purpose: the production file with
coordinator and pgBouncer only (`--mode standalone`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.engine import DOCKER_DIR, Project, documented, project, shell

pytestmark = pytest.mark.timeout(900)

REPO = DOCKER_DIR.parent
PROD = ["docker-compose.yml", "docker-compose.prod.yml"]
ROWS = 5_000

UP_BLUE = "$BLUE exapg up --mode standalone"
UP_GREEN = "$GREEN exapg up --mode standalone"
GREEN_HEALTHY = "until $GREEN exapg health; do sleep 5; done"
MOVE = ("$BLUE exapg compose prod exec -T coordinator pg_dump -U postgres --no-owner --exclude-schema='exapg_*' "
        "exadb | $GREEN exapg compose prod exec -T coordinator psql -X -q -v ON_ERROR_STOP=1 -U postgres exadb")
STOP_BLUE = "$BLUE exapg stop"
HEALTH_BLUE = "$BLUE exapg health"
DOWN_BLUE = "$BLUE exapg down"
CONTENT = "SELECT count(*), sum(total), md5(string_agg(id || ':' || total, ',' ORDER BY id)) FROM orders"


def env_file(stack: Project, color: str, tmp_path: Path) -> Path:
    """docker/env/<color>.env.example with this run's values (the example's keys in place,
    the others appended), as a user's copy would be after setting the secrets."""
    values = {k: v for k, v in stack.env.items() if k not in ("PATH", "HOME")}
    lines = []
    for line in (DOCKER_DIR / "env" / f"{color}.env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values.pop(key)}" if "=" in line and not line.startswith("#") and key in values
                     else line)
    path = tmp_path / f"{color}.env"
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")
    return path


def user_shell(files: dict[str, Path]) -> dict[str, str]:
    """The docs' setup lines (`export EXAPG_BACKEND=docker`, BLUE=..., GREEN=...) with the env
    files of this run; exapg from this interpreter's environment. Nothing else: every
    setting comes from the env files."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "EXAPG_BACKEND": "docker",
            "BLUE": f"env EXAPG_ENV_FILE={files['blue']}", "GREEN": f"env EXAPG_ENV_FILE={files['green']}"}


def content(stack: Project, port_variable: str = "COORDINATOR_PORT") -> tuple:
    with stack.connect(port_variable) as conn:
        row = conn.execute(CONTENT).fetchone()
    assert row is not None
    return tuple(row)


def test_blue_green_switch_on_the_engine(tmp_path):
    documented("export EXAPG_BACKEND=docker")
    documented('BLUE="env EXAPG_ENV_FILE=docker/env/blue.env" GREEN="env EXAPG_ENV_FILE=docker/env/green.env"')
    dirs = {color: {f"EXAPG_{n.upper()}_DIR": str(tmp_path / color / n) for n in ("data", "config", "log")}
            for color in ("blue", "green")}
    with project(PROD, **dirs["blue"]) as blue, project(PROD, **dirs["green"]) as green:
        assert blue.env["EXAPG_SUBNET"] != green.env["EXAPG_SUBNET"]
        env = user_shell({"blue": env_file(blue, "blue", tmp_path), "green": env_file(green, "green", tmp_path)})

        def run(command: str) -> subprocess.CompletedProcess[str]:
            return shell(documented(command), REPO, env)

        run(UP_BLUE)                                     # blue serves the application
        blue.wait_healthy("coordinator", "pgbouncer")
        with blue.connect("PGBOUNCER_PORT") as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total int)")
            conn.execute("INSERT INTO orders SELECT g, g * 3 FROM generate_series(1, %s) g", (ROWS,))
        expected = content(blue)
        assert expected[:2] == (ROWS, 3 * ROWS * (ROWS + 1) // 2)

        run(UP_GREEN)                                    # 1. green beside blue
        run(GREEN_HEALTHY)                               # 2. green healthy
        run(MOVE)                                        # 3. the data moved
        assert content(green, "PGBOUNCER_PORT") == expected  # 4. a client of green's pgBouncer reads it
        assert green.inspect("pgbouncer")["Name"] == f"/{green.name}_pgbouncer"

        run(STOP_BLUE)                                   # 5. blue stopped
        assert {blue.inspect(s)["State"]["Status"] for s in ("coordinator", "pgbouncer")} == {"exited"}
        assert subprocess.run(["bash", "-c", documented(HEALTH_BLUE)], cwd=REPO, env=env, capture_output=True,
                              timeout=120, check=False).returncode == 1
        run(GREEN_HEALTHY)
        assert content(green, "PGBOUNCER_PORT") == expected
        assert (tmp_path / "blue" / "data" / "coordinator" / "PG_VERSION").is_file()

        run(UP_BLUE)                                     # blue's data kept: it starts with its rows
        blue.wait_healthy("coordinator", "pgbouncer")
        assert content(blue, "PGBOUNCER_PORT") == expected
        run(DOWN_BLUE)                                   # later: blue's containers removed, data kept
        assert blue.compose("ps", "-q").stdout.split() == []
        assert (tmp_path / "blue" / "data" / "coordinator" / "PG_VERSION").is_file()
        assert content(green, "PGBOUNCER_PORT") == expected

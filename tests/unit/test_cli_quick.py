"""`exapg status` and `exapg health` answer the same with and without Typer.

main() runs their plain forms itself (cli/quick.py); the Typer app in cli/app.py has the
same commands. Each pair below runs once each way, in fresh interpreters, against the same
stack, and must print the same and exit the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from exapg.cli.quick import Call, parse

QUICK = "import sys; from exapg.cli.main import main; sys.exit(main(sys.argv[1:]))"
TYPER = ("import sys; from exapg.cli.app import app; from exapg.cli.main import main\n"
         "import exapg.cli.quick as q; q.parse = lambda args: None\n"
         "sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize(("args", "call"), [
    (["status"], Call("status")),
    (["health", "--json"], Call("health", as_json=True)),
    (["--debug", "status", "--backend", "docker"], Call("status", backend="docker")),
    (["health", "--backend=local", "--json"], Call("health", as_json=True, backend="local")),
])
def test_plain_forms_are_parsed(args, call):
    assert parse(args) == call


@pytest.mark.parametrize("args", [
    [], ["--help"], ["up"], ["status", "--help"], ["status", "-h"], ["status", "--json", "--json"],
    ["status", "--backend"], ["status", "--backend", "--json"], ["status", "--backend="], ["status", "extra"],
    ["status", "--debug"], ["--debug"], ["health", "--backend", "local", "--backend", "docker"],
])
def test_everything_else_is_left_to_typer(args):
    assert parse(args) is None


def run(code: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          check=False, env=env)


@pytest.mark.parametrize("args", [["status"], ["health"], ["status", "--json"], ["health", "--json"],
                                  ["status", "--backend=nowhere"], ["health", "--backend", "docker", "--json"]])
@pytest.mark.parametrize("state", [None, {"mode": "standalone", "workers": 0, "standby": False}])
def test_both_ways_print_and_exit_the_same(tmp_path, args, state):
    if state is not None:
        (tmp_path / "stack").mkdir()
        (tmp_path / "stack" / "state.json").write_text(json.dumps({"version": 1, "project": "exapg", **state}))
    env = {**os.environ, "EXAPG_STATE_DIR": str(tmp_path / "stack"), "EXAPG_ENV_FILE": "/nonexistent/.env",
           "EXAPG_BACKEND": "local", "COLUMNS": "160", "COMPOSE_PROJECT_NAME": f"exapg-quick-{tmp_path.name}"}
    quick, typer = run(QUICK, args, env), run(TYPER, args, env)
    assert (quick.returncode, quick.stdout, quick.stderr) == (typer.returncode, typer.stdout, typer.stderr)
    assert quick.returncode != 0 or args[0] == "status"  # nothing runs: health fails, and says so
    assert quick.stdout or quick.stderr

"""The management backend's program under a real supervisord, like `exapg up` runs it.

As the service user when it can execute this Python; a virtualenv whose interpreter sits
under a private home (/root/.pyenv) cannot be run by `postgres`, and then supervisord
runs as the current user instead (the program itself is the same).
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from exapg.proc import ServiceUser
from exapg.runtime.preflight import untraversable
from exapg.runtime.programs import management_api
from exapg.runtime.programs.management_api import NAME
from exapg.runtime.supervisor import Supervisor
from exapg.stack import Stack
from exapg.status import Role
from tests.conftest import free_port, new_state_dir

pytestmark = pytest.mark.integration


def reachable(executable: Path, user: ServiceUser) -> bool:
    """Whether `user` may traverse every directory up to the real interpreter."""
    return untraversable(executable.resolve(), user) is None


def current_user() -> ServiceUser:
    entry = pwd.getpwuid(os.geteuid())
    return ServiceUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def test_supervised_backend_becomes_healthy_and_serves_the_ui(ha_stack):
    runtime = ha_stack.runtime
    port = free_port()
    settings = ha_stack.settings.model_copy(update={"mgmt_backend_port": port})
    env = settings.to_environment()
    user = runtime.stack.user if reachable(Path(sys.executable), runtime.stack.user) else current_user()
    base = new_state_dir().parent  # under /tmp, reachable by the service user
    dirs = {name: user.make_dir(base / name, 0o700) for name in ("conf", "run", "logs")}
    program = replace(management_api.program(Stack(settings)), directory=dirs["logs"])
    assert program.environment == {**env, "EXAPG_STATE_DIR": str(settings.state_dir), "PYTHONUNBUFFERED": "1"}
    assert (program.name, program.role, program.port) == (NAME, Role.API, port)
    assert program.health_url == f"http://127.0.0.1:{port}/api/health"
    supervisor = Supervisor(dirs["conf"], dirs["run"], dirs["logs"], user)
    supervisor.write([program], "exapg-api-test")
    supervisor.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                healthy = httpx.get(program.health_url, timeout=2).status_code == 200
            except httpx.HTTPError:
                healthy = False
            if healthy and supervisor.processes()[NAME].state == "RUNNING":
                break
            time.sleep(0.2)
        else:
            log = (dirs["logs"] / f"{NAME}.log").read_text()[-2000:]
            pytest.fail(f"supervised backend not healthy: {log}")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<div id=\"root\">" in page.text
    finally:
        supervisor.shutdown()
        shutil.rmtree(base, ignore_errors=True)

"""The management API in-process, on a stack access with no server behind it.

Nothing here starts PostgreSQL: the access knows a topology but no node can be reached
(every request that needs the database fails as it would with the stack stopped), and the
app's lifespan (schema, first admin, sampler) never runs. A session is "confirmed by the
database" by putting its state in the app's own session cache, as a check a moment ago
would have.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exapg.api.access import BackupListing, Progress, Taken
from exapg.api.app import create_app
from exapg.api.context import AppContext
from exapg.api.core.security import UserRole, issue_token
from exapg.api.crud.users import UserState
from exapg.backup.pgbackrest import BackupType
from exapg.cluster.topology import Mode, Node, Topology
from exapg.errors import ExaPGError
from exapg.postgres.conn import Dsn
from exapg.settings import Settings
from exapg.status import Role, ServiceStatus

SECRET = "unit-tests-only-signing-key-" + "k" * 24
DATA = Path("/nonexistent/data")


class StoppedStack:
    """A stack access whose nodes are all down: topology and secrets, no connection."""

    def __init__(self, secret: str | None = SECRET) -> None:
        self.secret = secret

    def topology(self) -> Topology:
        return Topology(Mode.HA, (
            Node("coordinator", Role.COORDINATOR, 5432, DATA),
            Node("standby", Role.STANDBY, 5440, DATA, primary="coordinator"),
        ))

    def dsn(self, node: str) -> Dsn:
        raise ExaPGError(f"node {node} is not running: start the stack with 'exapg up'")

    def pooler_dsn(self) -> Dsn | None:
        return None

    def services(self) -> list[ServiceStatus]:
        return []

    def api_secret_key(self) -> str | None:
        return self.secret

    def admin_password(self) -> str | None:
        return None

    def backups(self) -> BackupListing:
        raise ExaPGError("pgbackrest info (coordinator) failed: unable to list file info for missing path "
                         "'/nonexistent/backup/archive/coordinator'")

    def check_backup(self) -> None:
        raise ExaPGError("coordinator is not running: start the stack with 'exapg up' first")

    def take_backup(self, kind: BackupType, progress: Progress) -> Taken:
        raise ExaPGError("coordinator is not running: start the stack with 'exapg up' first")


def unit_settings(state_dir: Path) -> Settings:
    return Settings.load(environ={"EXAPG_ENV_FILE": "/nonexistent/.env", "EXAPG_STATE_DIR": str(state_dir)})


def unit_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "EXAPG_PROMETHEUS_URL": "http://127.0.0.1:9",  # nothing listens: charts fall back
        "EXAPG_SESSION_TTL": "10",
        "EXAPG_UI_DIR": str(tmp_path / "no-ui"),
        **extra,
    }


@dataclass
class Api:
    app: FastAPI
    client: TestClient

    @property
    def ctx(self) -> AppContext:
        return self.app.state.ctx  # type: ignore[no-any-return]

    def token(self, role: str, *, username: str | None = None, uid: int = 7, generation: int = 1,
              ttl: int = 600, secret: str = SECRET) -> str:
        name = username or f"{role}1"
        return issue_token(secret, username=name, role=UserRole(role), uid=uid,
                           generation=generation, ttl=ttl)[0]

    def session(self, role: str, *, db_role: str | None = None, enabled: bool = True, version: int = 1,
                logged_out: bool = False) -> dict[str, str]:
        """Headers of a token claiming `role` whose session the database confirmed a moment
        ago (in the session cache), with the user's state as the database gave it."""
        token, claims = issue_token(SECRET, username=f"{role}1", role=UserRole(role), uid=7,
                                    generation=1, ttl=600)
        state = UserState(db_role or role, enabled, version)
        self.ctx.sessions.put(claims.jti, claims.username, claims.uid, (state, logged_out))
        return {"Authorization": f"Bearer {token}"}

    def unchecked(self, role: str) -> dict[str, str]:
        """Headers of a valid token this process has not checked: with the coordinator down,
        only its signed claims speak for it."""
        return {"Authorization": f"Bearer {self.token(role)}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    app = create_app(unit_settings(tmp_path / "state"), access=StoppedStack(), environ=unit_env(tmp_path))
    client = TestClient(app)  # not entered: no lifespan, so no schema, first admin or sampler
    yield Api(app, client)
    client.close()
    app.state.ctx.password_checks.close()

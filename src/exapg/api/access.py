"""How the API reaches the stack it manages: a local stack, or a coordinator URL (Docker).

Both give the same four things: the topology, a Dsn per node, the services' status,
and the secrets the API needs (token key, first admin password).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from psycopg.conninfo import conninfo_to_dict

from exapg.cluster.topology import Mode, Node, Topology
from exapg.errors import ConfigurationError, ExaPGError
from exapg.postgres.conn import Dsn
from exapg.settings import Settings
from exapg.status import Role, ServiceStatus


class StackAccess(Protocol):
    def topology(self) -> Topology: ...

    def dsn(self, node: str) -> Dsn: ...

    def pooler_dsn(self) -> Dsn | None: ...

    def services(self) -> list[ServiceStatus]: ...

    def api_secret_key(self) -> str | None: ...

    def admin_password(self) -> str | None: ...


class LocalAccess:
    """A stack set up by `exapg up` on this machine (the lead's LocalRuntime)."""

    def __init__(self, settings: Settings) -> None:
        from exapg.runtime.local import LocalRuntime  # the runtime pulls in supervisor & co.

        self.settings = settings
        self.runtime = LocalRuntime(settings)

    def topology(self) -> Topology:
        return self.runtime.topology

    def dsn(self, node: str) -> Dsn:
        return self.runtime.dsn(node)

    def pooler_dsn(self) -> Dsn | None:
        base = self.runtime.dsn("coordinator")
        return Dsn(base.host, self.settings.pgbouncer_port, "pgbouncer", base.user, base.password)

    def services(self) -> list[ServiceStatus]:
        return self.runtime.status()

    def api_secret_key(self) -> str | None:
        return self.runtime.secrets.api_secret_key

    def admin_password(self) -> str | None:
        return self.runtime.secrets.admin_password


@dataclass
class UrlAccess:
    """Docker mode: one coordinator given as DATABASE_URL; secrets from the environment."""

    settings: Settings
    database_url: str

    def _parts(self) -> dict[str, str]:
        try:
            return {k: str(v) for k, v in conninfo_to_dict(self.database_url).items()}
        except Exception as exc:
            raise ConfigurationError(f"DATABASE_URL is not a valid PostgreSQL URL: {exc}") from None

    def topology(self) -> Topology:
        port = int(self._parts().get("port", 5432))
        node = Node("coordinator", Role.COORDINATOR, port, Path("/var/lib/postgresql/data"))
        return Topology(Mode.STANDALONE, (node,))

    def dsn(self, node: str) -> Dsn:
        if node != "coordinator":
            raise ExaPGError(f"no node named {node!r} (DATABASE_URL gives only the coordinator)")
        p = self._parts()
        password = p.get("password") or (
            self.settings.postgres_password.get_secret_value()
            if self.settings.postgres_password
            else ""
        )
        return Dsn(
            p.get("host", "localhost"),
            int(p.get("port", 5432)),
            p.get("dbname", self.settings.postgres_db),
            p.get("user", self.settings.postgres_user),
            password,
        )

    def pooler_dsn(self) -> Dsn | None:
        return None

    def services(self) -> list[ServiceStatus]:
        return []

    def api_secret_key(self) -> str | None:
        key = self.settings.api_secret_key
        return key.get_secret_value() if key else None

    def admin_password(self) -> str | None:
        value = self.settings.admin_password
        return value.get_secret_value() if value else None


def stack_access(settings: Settings, database_url: str | None) -> StackAccess:
    return UrlAccess(settings, database_url) if database_url else LocalAccess(settings)

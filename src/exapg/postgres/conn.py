"""Connections (psycopg 3) with a timeout on everything.

psycopg is imported when a connection is opened, not with this module: `Dsn` is part of
every stack, and `exapg status` on a stack without standby or workers opens none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from exapg.errors import ExaPGError, first_line

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Dsn:
    host: str
    port: int
    dbname: str
    user: str
    password: str

    def kwargs(self, **extra: object) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "exapg",
            **extra,
        }

    def url(self, *, hide_password: bool = True) -> str:
        password = "****" if hide_password else quote(self.password, safe="")
        user, dbname = quote(self.user, safe=""), quote(self.dbname, safe="")
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{dbname}"


def connect(
    dsn: Dsn, *, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS, autocommit: bool = True
) -> psycopg.Connection:
    """Open a connection or raise ExaPGError with one line saying which server failed."""
    import psycopg

    try:
        return psycopg.connect(
            autocommit=autocommit,
            options=f"-c statement_timeout={statement_timeout_ms}",
            **dsn.kwargs(),  # type: ignore[arg-type]
        )
    except psycopg.OperationalError as exc:
        reason = first_line(exc, last=True) if str(exc).strip() else "connection failed"
        raise ExaPGError(f"cannot connect to {dsn.host}:{dsn.port}/{dsn.dbname}: {reason}") from exc


def ident(name: str) -> sql.Identifier:
    from psycopg import sql

    return sql.Identifier(name)

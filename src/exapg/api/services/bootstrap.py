"""Start-up work on the coordinator: the `exapg_mgmt` schema and the first admin.

Idempotent and serialized with an advisory lock, so several API processes may start
at once. The first admin is created only while no user exists at all: a password
changed later in the UI is never overwritten.

`admin_credentials()` is what `exapg credentials` shows. Without any known password
(Docker without EXAPG_ADMIN_PASSWORD) one is generated and written once to the
backend's log, never stored in clear.
"""

from __future__ import annotations

import logging
import secrets as random
from dataclasses import dataclass

import psycopg

from exapg.api.core.security import UserRole, hash_password
from exapg.api.crud import audit, users
from exapg.credentials import Secrets
from exapg.errors import ConfigurationError
from exapg.settings import Settings

ADMIN_USERNAME = "admin"
SCHEMA_LOCK = 0x45584150_4D474D54 & 0x7FFFFFFFFFFFFFFF  # "EXAPMGMT"
log = logging.getLogger(__name__)

SCHEMA_SQL = [
    "CREATE SCHEMA IF NOT EXISTS exapg_mgmt",
    "REVOKE ALL ON SCHEMA exapg_mgmt FROM PUBLIC",
    """CREATE TABLE IF NOT EXISTS exapg_mgmt.users (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        username text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9_.-]{2,62}$'),
        role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        password_hash text NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        last_login_at timestamptz)""",
    """CREATE TABLE IF NOT EXISTS exapg_mgmt.audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text,
        action text NOT NULL,
        target text,
        success boolean NOT NULL,
        client_addr text,
        detail jsonb NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS audit_log_failed_logins ON exapg_mgmt.audit_log (at) "
    "WHERE action = 'login' AND NOT success",
    # raised by every password change and disable, so that tokens of older versions end
    "ALTER TABLE exapg_mgmt.users ADD COLUMN IF NOT EXISTS token_version bigint NOT NULL DEFAULT 1",
    # logins reserved before their password is checked (auth.py, crud/attempts.py)
    """CREATE TABLE IF NOT EXISTS exapg_mgmt.login_attempts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        username text NOT NULL,
        client_addr text,
        device text,
        outcome text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'ok', 'bad')))""",
    "CREATE INDEX IF NOT EXISTS login_attempts_user ON exapg_mgmt.login_attempts (username, at)",
    "CREATE INDEX IF NOT EXISTS login_attempts_address ON exapg_mgmt.login_attempts (client_addr, at) "
    "WHERE client_addr IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS login_attempts_device ON exapg_mgmt.login_attempts (device, at) "
    "WHERE device IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS login_attempts_at ON exapg_mgmt.login_attempts (at)",
    """CREATE TABLE IF NOT EXISTS exapg_mgmt.revoked_tokens (
        jti text PRIMARY KEY,
        expires_at timestamptz NOT NULL)""",
]


@dataclass(frozen=True)
class AdminCredentials:
    username: str
    password: str
    source: str  # "EXAPG_ADMIN_PASSWORD" or the secrets file it was generated into


def admin_credentials(settings: Settings, secrets: Secrets | None = None) -> AdminCredentials:
    """The first admin's login: EXAPG_ADMIN_PASSWORD if set, else the stack's generated one.

    It is the *initial* password: once the admin changes it in the UI, this is stale.
    """
    if settings.admin_password is not None:
        return AdminCredentials(
            ADMIN_USERNAME, settings.admin_password.get_secret_value(), "EXAPG_ADMIN_PASSWORD"
        )
    if secrets is not None:
        return AdminCredentials(
            ADMIN_USERNAME, secrets.admin_password, str(settings.state_dir / "secrets.json")
        )
    raise ConfigurationError(
        "no first admin password: set EXAPG_ADMIN_PASSWORD (or EXAPG_ADMIN_PASSWORD_FILE)"
    )


def ensure_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for statement in SCHEMA_SQL:
            conn.execute(statement)


def ensure_first_admin(conn: psycopg.Connection, password: str | None) -> bool:
    """Create `admin` when there is no user yet; True when it was created."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        if users.count_users(conn) > 0:
            return False
        generated = not password
        password = password or random.token_urlsafe(16)
        users.create_user(
            conn, username=ADMIN_USERNAME, role=UserRole.ADMIN, hashed=hash_password(password)
        )
        audit.record(
            conn,
            actor=None,
            action="user_create",
            target=ADMIN_USERNAME,
            success=True,
            client_addr=None,
            detail={"role": "admin", "first_admin": True},
        )
    if generated:
        # Docker without EXAPG_ADMIN_PASSWORD: shown once, in the backend's log only
        log.warning(
            "first management admin %r created with the generated password %s: "
            "log in and change it (set EXAPG_ADMIN_PASSWORD before the first start to choose it)",
            ADMIN_USERNAME,
            password,
        )
    else:
        log.info("first management admin %r created", ADMIN_USERNAME)
    return True

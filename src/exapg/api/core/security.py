"""Password hashing (argon2id) and signed, expiring access tokens (JWT, HS256)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from exapg.api.core.errors import InvalidInputError
from exapg.passwords import password_problem

ISSUER = "exapg"
AUDIENCE = "exapg-mgmt"
ALGORITHM = "HS256"


class UserRole(StrEnum):
    """Roles of the management UI, weakest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(UserRole).index(self)

    def allows(self, needed: UserRole) -> bool:
        return self.rank >= needed.rank


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile


def hash_password(password: str) -> str:
    return hasher().hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists (no user enumeration by timing)."""
    try:
        return hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def require_strong_password(password: str, *, username: str) -> None:
    """The rule of the stack's own secrets, and not the user's own name (422 otherwise)."""
    problem = password_problem("password", password, (username,))
    if problem:
        raise InvalidInputError(problem)


@dataclass(frozen=True)
class TokenClaims:
    """A session: `uid` and `generation` bind it to one user row and one password of it
    (a user made again under the same name has another id; a new password or a disable
    raises the generation), so such changes end every earlier session."""

    username: str
    role: UserRole
    jti: str
    expires_at: int
    uid: int
    generation: int


def issue_token(
    secret: str, *, username: str, role: UserRole, uid: int, generation: int, ttl: int
) -> tuple[str, TokenClaims]:
    now = int(time.time())
    claims = TokenClaims(username, role, secrets.token_urlsafe(16), now + ttl, uid, generation)
    payload = {
        "sub": username,
        "role": str(role),
        "uid": uid,
        "gen": generation,
        "jti": claims.jti,
        "iat": now,
        "exp": claims.expires_at,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer claim")
    return value


def decode_token(secret: str, token: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token signed with `secret`; None otherwise."""
    try:
        data = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "role", "uid", "gen", "jti", "exp", "iat"]},
        )
        return TokenClaims(
            str(data["sub"]),
            UserRole(data["role"]),
            str(data["jti"]),
            int(data["exp"]),
            _integer(data["uid"]),
            _integer(data["gen"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None


DEVICE_AUDIENCE = "exapg-device"
DEVICE_TTL = 90 * 86400


def issue_device_token(secret: str, *, username: str) -> tuple[str, str]:
    """(token, device id): proof that this browser logged in as `username` before. It opens
    no session; it only lets that user's logins from here past the per-user throttle."""
    now, device = int(time.time()), secrets.token_urlsafe(12)
    payload = {"sub": username, "did": device, "iat": now, "exp": now + DEVICE_TTL,
               "iss": ISSUER, "aud": DEVICE_AUDIENCE}
    return jwt.encode(payload, secret, algorithm=ALGORITHM), device


def device_of(secret: str, token: str | None, *, username: str) -> str | None:
    """The device id of a valid device token of `username`; None otherwise."""
    if not token:
        return None
    try:
        data = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=DEVICE_AUDIENCE,
                          issuer=ISSUER, options={"require": ["sub", "did", "exp"]})
    except jwt.PyJWTError:
        return None
    return str(data["did"]) if data["sub"] == username else None

"""The one password rule: the stack's own secrets (`exapg config validate`) and management users.

Generated secrets always pass. Shared by config_check (secrets of the stack) and the
management API (users' passwords), so both refuse the same weak passwords.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

MIN_PASSWORD = 12
LONG_PASSWORD = 20  # from this length on, one or two character classes are enough
MIN_DISTINCT = 5
CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation)
RULE = (
    f"at least {MIN_PASSWORD} characters, at least {MIN_DISTINCT} different ones, not the user "
    f"name, and three of lower case, upper case, digits and symbols (or {LONG_PASSWORD}+ characters)"
)


def password_problem(name: str, password: str, forbidden: Iterable[str] = ()) -> str | None:
    """Why `password` is weak (one line starting with `name`), or None.

    `forbidden` are words the password must not equal, whatever the case (user and
    database names)."""
    classes = sum(any(ch in group for ch in password) for group in CLASSES)
    if len(password) < MIN_PASSWORD:
        return f"{name}: too short ({len(password)} characters; use at least {MIN_PASSWORD})"
    if password.strip().lower() in {word.lower() for word in forbidden}:
        return f"{name}: must not equal the user or database name"
    if classes < 3 and len(password) < LONG_PASSWORD:
        return (f"{name}: weak (mix lower case, upper case, digits and symbols, "
                f"or use {LONG_PASSWORD}+ characters)")
    if len(set(password)) < MIN_DISTINCT:
        return f"{name}: weak (too few distinct characters)"
    return None

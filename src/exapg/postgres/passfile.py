"""libpq password files (pgpass): one writer for the local runtime and the exapg/postgres image.

The image's entrypoint runs `python3 -m exapg.postgres.passfile PATH USER` with the password
on standard input (never on a command line); it needs nothing but the standard library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path


def escape(value: str) -> str:
    """pgpass fields escape ':' and '\\'."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def render(entries: Iterable[tuple[str, str]]) -> str:
    """One line per (user, password), for any host, port and database."""
    return "".join(f"*:*:*:{escape(user)}:{escape(password)}\n" for user, password in entries)


def write(path: Path, text: str) -> None:
    """Write the file 0600 (libpq ignores a pgpass others can read), its directory 0700 if new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python3 -m exapg.postgres.passfile PATH USER  (password on standard input)",
              file=sys.stderr)
        return 2
    password = sys.stdin.read().rstrip("\n")  # as the shell's $(...) would
    if not password:
        print("exapg.postgres.passfile: no password on standard input", file=sys.stderr)
        return 5
    write(Path(args[0]), render([(args[1], password)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

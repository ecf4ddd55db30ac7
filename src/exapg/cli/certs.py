"""`exapg certs`: a private CA and a PostgreSQL server certificate in a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from exapg.certs import DEFAULT_DAYS, DEFAULT_HOSTNAMES, generate, parse_owner
from exapg.cli.output import info, print_json, print_mapping


def certs(
    folder: Path = typer.Argument(Path("config/ssl"), help="Folder to write ca.crt, ca.key, server.crt, server.key."),
    hostname: list[str] = typer.Option(
        [], "--hostname", "-H", help=f"Server name or IP (repeatable). Default: {', '.join(DEFAULT_HOSTNAMES)}."),
    days: int = typer.Option(DEFAULT_DAYS, "--days", help="Validity in days."),
    owner: str | None = typer.Option(None, "--owner", help="UID[:GID] to own server.crt/server.key (999:999 for "
                                     "the exapg/postgres container); needs root."),
    force: bool = typer.Option(False, "--force", help="Replace existing keys."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Generate a CA and a server certificate for PostgreSQL TLS (keys 0600)."""
    files = generate(folder, hostnames=hostname or None, days=days, owner=parse_owner(owner), force=force)
    if as_json:
        print_json(files.to_dict())
        return
    print_mapping(files.to_dict(), title="certificates written")
    info("Keep ca.key out of version control and off the servers; mount the folder with "
         "docker-compose.security.yml (EXAPG_SSL_DIR).")


def register(app: typer.Typer) -> None:
    app.command("certs")(certs)

"""`exapg exporter`: run the replication exporter in the foreground."""

from __future__ import annotations

import typer

from exapg.errors import ExitCode


def exporter(
    port: int | None = typer.Option(None, "--port", help="HTTP port (EXPORTER_PORT, 9188)."),
    listen_address: str | None = typer.Option(None, "--listen-address", help="EXPORTER_LISTEN_ADDRESS."),
    primary_host: str | None = typer.Option(None, "--primary-host", help="PRIMARY_HOST."),
    primary_port: int | None = typer.Option(None, "--primary-port", help="PRIMARY_PORT."),
    standby_hosts: str | None = typer.Option(None, "--standby-hosts", help="STANDBY_HOSTS: host:port,..."),
    dbname: str | None = typer.Option(None, "--dbname", help="POSTGRES_DB."),
    user: str | None = typer.Option(None, "--user", help="POSTGRES_USER."),
    password_file: str | None = typer.Option(None, "--password-file", help="POSTGRES_PASSWORD_FILE."),
    sslmode: str | None = typer.Option(None, "--sslmode", help="POSTGRES_SSLMODE."),
    scrape_timeout: float | None = typer.Option(None, "--scrape-timeout", help="EXPORTER_SCRAPE_TIMEOUT, seconds."),
    log_level: str | None = typer.Option(None, "--log-level", help="EXPORTER_LOG_LEVEL."),
) -> None:
    """Serve replication metrics on /metrics and the exporter's health on /health."""
    options = dict(locals())  # the options only: taken before the imports below add names
    from exapg.exporter.__main__ import environment, run
    from exapg.exporter.environment import ExporterConfig

    config = ExporterConfig.from_env(environment(options))  # ConfigurationError: exit code 5
    code = run(config)
    if code != ExitCode.OK:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("exporter")(exporter)

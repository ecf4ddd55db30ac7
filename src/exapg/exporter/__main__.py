"""`exapg-replication-exporter` / `python -m exapg.exporter`: run the exporter in the foreground.

Options override the environment variables of the same meaning (shown in --help).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping

from exapg.errors import ConfigurationError, ExitCode
from exapg.exporter.collector import ReplicationCollector
from exapg.exporter.environment import ExporterConfig
from exapg.exporter.server import serve

log = logging.getLogger("exapg.exporter")

# option dest -> environment variable it overrides
OPTIONS = {
    "port": "EXPORTER_PORT",
    "listen_address": "EXPORTER_LISTEN_ADDRESS",
    "primary_host": "PRIMARY_HOST",
    "primary_port": "PRIMARY_PORT",
    "standby_hosts": "STANDBY_HOSTS",
    "dbname": "POSTGRES_DB",
    "user": "POSTGRES_USER",
    "password_file": "POSTGRES_PASSWORD_FILE",
    "sslmode": "POSTGRES_SSLMODE",
    "scrape_timeout": "EXPORTER_SCRAPE_TIMEOUT",
    "log_level": "EXPORTER_LOG_LEVEL",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="exapg-replication-exporter",
        description="Serve PostgreSQL replication metrics for Prometheus on /metrics and "
                    "the exporter's own health on /health.",
    )
    for dest, env in OPTIONS.items():
        p.add_argument(f"--{dest.replace('_', '-')}", dest=dest, metavar=env,
                       help=f"overrides ${env}")
    return p


def environment(overrides: Mapping[str, object | None], base: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """The process environment with the options given on the command line laid over it."""
    env = dict(os.environ if base is None else base)
    for dest, value in overrides.items():
        if value is not None and dest in OPTIONS:
            env[OPTIONS[dest]] = str(value)
    return env


def run(config: ExporterConfig, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or `stop` is set); returns the exit code."""
    logging.basicConfig(level=config.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for problem in config.address_problems():
        log.error("%s: that server is reported down until the setting is fixed", problem)
    collector = ReplicationCollector(config)
    try:
        server = serve(collector, config.listen_address, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s: choose another EXPORTER_PORT",
                  config.listen_address, config.port, exc.strerror)
        return int(ExitCode.CONFIGURATION)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    log.info("serving /metrics and /health on %s:%s for %s", config.listen_address, config.port,
             ", ".join(f"{s.role} {s.label}" for s in config.servers))
    stop.wait()
    server.shutdown()
    server.server_close()
    collector.close()
    return int(ExitCode.OK)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = ExporterConfig.from_env(environment(vars(args)))
    except ConfigurationError as exc:
        print(f"exapg-replication-exporter: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())

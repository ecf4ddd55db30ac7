"""`exapg images build`: every ExaPG image from one Debian base, without an image registry."""

from __future__ import annotations

import typer

from exapg.cli.output import console, print_json


def build(
    base: str = typer.Option(None, "--base", help="Base image (default EXAPG_BASE_IMAGE, else debian:bookworm-slim; "
                             "bootstrapped as exapg/debian:bookworm when it cannot be pulled)."),
    citus_source: str = typer.Option(None, "--citus-source", help="A Citus source tree for the builder stage "
                                     "(default EXAPG_CITUS_SOURCE, else ~/.cache/exapg/citus-src)."),
    citus: str = typer.Option("auto", "--citus", help="auto (local tree, else Citus's release archive, else "
                              "without Citus), local, release or none."),
    stand_ins: bool = typer.Option(True, "--stand-ins/--no-stand-ins",
                                   help="Also build Prometheus and postgres_exporter from Debian's packages."),
    json_output: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Build exapg/postgres, pgbouncer, replication-exporter, mgmt-backend and mgmt-frontend
    (and the Debian stand-ins for Prometheus and postgres_exporter); images whose inputs did
    not change are kept."""
    from exapg.runtime.images import build_all

    if citus not in ("auto", "local", "release", "none"):
        raise typer.BadParameter("use auto, local, release or none", param_hint="--citus")
    say = (lambda line: None) if json_output else (lambda line: console.print(line, highlight=False))
    done = build_all(base=base, citus_source=citus_source, citus_mode=citus, stand_ins=stand_ins, say=say)
    if json_output:
        print_json(done)
        return
    found = done["citus"]
    console.print(f"Citus in exapg/postgres: {found}" if found != "none" else
                  "exapg/postgres has no Citus: cluster mode needs a Citus source "
                  "(--citus-source DIR, or internet access for Citus's release archive)", highlight=False)


def push(
    to: str = typer.Option(..., "--to", help="Registry path to push to, host[:port]/path "
                           "(then EXAPG_IMAGE_PREFIX=that path for the compose files)."),
    version: str = typer.Option(None, "--version", help="Tag to push (default: ExaPG's version); "
                                ":latest is pushed as well."),
) -> None:
    """Tag and push ExaPG's images to a registry of yours, for hosts that pull them
    (docker-compose pull with EXAPG_IMAGE_PREFIX and EXAPG_VERSION)."""
    from exapg import __version__
    from exapg.runtime.images import push_all

    pushed = push_all(to, version=version or __version__, say=lambda line: console.print(line, highlight=False))
    console.print(f"pushed {len(pushed)} tags; on the deploying host: EXAPG_IMAGE_PREFIX={to} "
                  f"EXAPG_VERSION={version or __version__} docker-compose pull", highlight=False)


def register(app: typer.Typer) -> None:
    images = typer.Typer(help="Build ExaPG's container images and push them to a registry.",
                         no_args_is_help=True)
    images.command("build")(build)
    images.command("push")(push)
    app.add_typer(images, name="images")

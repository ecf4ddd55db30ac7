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


def register(app: typer.Typer) -> None:
    images = typer.Typer(help="Build ExaPG's container images.", no_args_is_help=True)
    images.command("build")(build)
    app.add_typer(images, name="images")

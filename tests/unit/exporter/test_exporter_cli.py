"""`exapg exporter` and `exapg-replication-exporter` take the same options."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from exapg.cli.exporter import register
from exapg.errors import ExitCode
from exapg.exporter.__main__ import OPTIONS, environment, main, parser


def test_options_override_the_environment():
    args = parser().parse_args(["--port", "19999", "--standby-hosts", "a:1,b:2"])
    env = environment(vars(args), base={"EXPORTER_PORT": "9188", "PRIMARY_HOST": "db"})
    assert env["EXPORTER_PORT"] == "19999"
    assert env["STANDBY_HOSTS"] == "a:1,b:2"
    assert env["PRIMARY_HOST"] == "db"


def test_cli_command_offers_every_console_script_option():
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Root."""

    result = CliRunner().invoke(app, ["exporter", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for dest in OPTIONS:
        assert f"--{dest.replace('_', '-')}" in result.output


def test_invalid_settings_exit_with_the_configuration_code(capsys, monkeypatch):
    monkeypatch.setenv("EXPORTER_PORT", "http")
    assert main([]) == ExitCode.CONFIGURATION
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "EXPORTER_PORT" in err

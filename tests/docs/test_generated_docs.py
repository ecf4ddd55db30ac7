"""docs/cli.md and docs/configuration.md are what tools/docs_gen.py makes of today's code."""

from __future__ import annotations

import difflib
import subprocess
import sys

import pytest
from tools import docs_gen

from exapg.settings import Settings


@pytest.mark.parametrize("rel", sorted(docs_gen.OUTPUTS))
def test_committed_doc_is_what_the_code_generates(rel):
    committed = (docs_gen.ROOT / rel).read_text(encoding="utf-8")
    generated = docs_gen.OUTPUTS[rel]()
    if committed != generated:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), generated.splitlines(True),
                                            rel, "generated", n=1))
        pytest.fail(f"{rel} is out of date: run 'make docs'\n{diff[:6000]}")


def test_check_names_a_stale_file(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    for rel, make in docs_gen.OUTPUTS.items():
        (tmp_path / rel).write_text(make(), encoding="utf-8")
    monkeypatch.setattr(docs_gen, "ROOT", tmp_path)
    assert docs_gen.stale() == []
    (tmp_path / "docs" / "cli.md").write_text("edited by hand\n", encoding="utf-8")
    assert docs_gen.stale() == ["docs/cli.md"]
    assert docs_gen.main(["--check"]) == 1


def test_every_command_is_in_the_cli_reference():
    text = docs_gen.cli_reference()
    for path, _command, _ctx in docs_gen._typer_commands():
        assert f"\n## {path}\n" in text
    assert "## exapg-replication-exporter" in text and "`--scrape-timeout EXPORTER_SCRAPE_TIMEOUT`" in text


def test_every_setting_has_a_row_with_its_default_and_runtime():
    text = docs_gen.configuration_reference()
    for name, info in Settings.model_fields.items():
        if info.alias:
            row = next(line for line in text.splitlines() if line.startswith(f"| `{info.alias}` |"))
            assert row.split(" | ")[3] in ("local", "docker", "both"), row
    assert "| `EXAPG_HUGE_PAGES` | `try` | `try`, `on`, `off` | local |" in text


def test_exporter_reads_are_found_with_defaults_and_bounds():
    reads = docs_gen.env_reads(docs_gen.SRC / "exporter" / "environment.py", helpers=True)
    assert reads["EXPORTER_PORT"].default == 9188 and reads["EXPORTER_PORT"].bounds == (1, 65535)
    assert reads["POSTGRES_SSLMODE"].bounds[0][-1] == "verify-full"
    assert {"STANDBY_HOST", "STANDBY_HOSTS", "POSTGRES_PASSWORD_FILE", "PRIMARY_NAME"} <= set(reads)


def test_image_defaults_are_read_from_the_dockerfile():
    env = docs_gen.dockerfile_env(docs_gen.DOCKER / "Dockerfile.replication-exporter")
    assert env["EXPORTER_PORT"] == "9188" and "POSTGRES_PASSWORD" not in env


def test_the_cli_does_not_import_the_generator():
    code = "import sys, exapg.cli.app; sys.exit('tools.docs_gen' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0

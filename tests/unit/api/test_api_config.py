"""The API's configuration: the same variables and defaults as ever, every bad value at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exapg.api.app import create_app
from exapg.api.core.config import ApiConfig
from exapg.errors import ConfigurationError
from exapg.settings import Settings
from tests.unit.api.conftest import SECRET, StoppedStack, unit_env, unit_settings

SETTINGS = Settings.load(environ={"EXAPG_ENV_FILE": "/nonexistent/.env", "MGMT_FRONTEND_PORT": "4001",
                                  "PROMETHEUS_PORT": "9999"})


def load(env: dict[str, str], secret: str | None = SECRET) -> ApiConfig:
    return ApiConfig.load(SETTINGS, env, secret_key=secret, admin_password=None)


def test_defaults_follow_the_settings():
    config = load({"EXAPG_UI_DIR": "/nonexistent"})
    assert config.frontend_origins == ("http://localhost:4001", "http://127.0.0.1:4001")
    assert config.prometheus_url == "http://127.0.0.1:9999"
    assert (config.token_ttl, config.sample_interval, config.overview_ttl, config.session_ttl) == (
        28800, 5.0, 1.0, 1.0)
    assert config.ui_dir is None  # no index.html there


def test_values_are_read_and_blank_ones_count_as_unset(tmp_path: Path):
    (tmp_path / "index.html").write_text("<!doctype html>")
    config = load({
        "EXAPG_FRONTEND_ORIGIN": " https://ui.example/ , https://other.example ",
        "EXAPG_PROMETHEUS_URL": "", "EXAPG_TOKEN_TTL": " 3600 ", "EXAPG_UI_DIR": str(tmp_path),
        "EXAPG_SAMPLE_INTERVAL": "0.5", "EXAPG_OVERVIEW_TTL": "0", "EXAPG_SESSION_TTL": "  ",
    })
    assert config.frontend_origins == ("https://ui.example", "https://other.example")
    assert config.prometheus_url == "http://127.0.0.1:9999"
    assert (config.token_ttl, config.ui_dir) == (3600, tmp_path)
    assert (config.sample_interval, config.overview_ttl, config.session_ttl) == (0.5, 0.0, 1.0)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("EXAPG_TOKEN_TTL", "59", "EXAPG_TOKEN_TTL: seconds between 60 and 604800"),
    ("EXAPG_TOKEN_TTL", "604801", "EXAPG_TOKEN_TTL: seconds between 60 and 604800"),
    ("EXAPG_TOKEN_TTL", "1h", "EXAPG_TOKEN_TTL: seconds between 60 and 604800"),
    ("EXAPG_TOKEN_TTL", "3600.0", "EXAPG_TOKEN_TTL: seconds between 60 and 604800"),
    ("EXAPG_SAMPLE_INTERVAL", "0.1", "EXAPG_SAMPLE_INTERVAL: seconds between 0.5 and 300"),
    ("EXAPG_SAMPLE_INTERVAL", "nan", "EXAPG_SAMPLE_INTERVAL: seconds between 0.5 and 300"),
    ("EXAPG_OVERVIEW_TTL", "61", "EXAPG_OVERVIEW_TTL: seconds between 0 and 60"),
    ("EXAPG_OVERVIEW_TTL", "-1", "EXAPG_OVERVIEW_TTL: seconds between 0 and 60"),
    ("EXAPG_SESSION_TTL", "soon", "EXAPG_SESSION_TTL: seconds between 0 and 10"),
])
def test_a_bad_value_is_one_line_naming_the_variable(name, value, message):
    with pytest.raises(ConfigurationError) as caught:
        load({name: value})
    assert str(caught.value) == message
    assert caught.value.problems == [message]


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ConfigurationError) as caught:
        load({"EXAPG_TOKEN_TTL": "1", "EXAPG_SESSION_TTL": "11"}, secret=None)
    assert caught.value.problems == [
        "API_SECRET_KEY is not set: set it (or API_SECRET_KEY_FILE)",
        "EXAPG_TOKEN_TTL: seconds between 60 and 604800",
        "EXAPG_SESSION_TTL: seconds between 0 and 10",
    ]
    assert "\n" not in str(caught.value)


def test_a_short_secret_is_refused_and_never_shown():
    with pytest.raises(ConfigurationError, match=r"^API_SECRET_KEY must be at least 32 characters") as caught:
        load({}, secret="s3cret-but-short")
    assert "s3cret-but-short" not in str(caught.value)
    assert SECRET not in repr(load({}))


def test_the_secret_comes_from_the_stack_not_the_environment():
    """Locally the secret is the stack's generated one; a stray variable does not replace it."""
    assert load({"API_SECRET_KEY": "x" * 64}).secret_key == SECRET


def test_create_app_fails_at_start_on_a_bad_configuration(tmp_path: Path):
    with pytest.raises(ConfigurationError, match=r"^API_SECRET_KEY is not set"):
        create_app(unit_settings(tmp_path), access=StoppedStack(secret=None), environ=unit_env(tmp_path))
    with pytest.raises(ConfigurationError, match=r"^EXAPG_SAMPLE_INTERVAL"):
        create_app(unit_settings(tmp_path), access=StoppedStack(),
                   environ=unit_env(tmp_path, EXAPG_SAMPLE_INTERVAL="0"))


def test_cors_allows_the_configured_front_end_only(tmp_path: Path):
    app = create_app(unit_settings(tmp_path), access=StoppedStack(),
                     environ=unit_env(tmp_path, EXAPG_FRONTEND_ORIGIN="https://ui.example"))
    client = TestClient(app)
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = client.options("/api/users", headers={"Origin": "https://ui.example", **ask})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    other = client.options("/api/users", headers={"Origin": "https://evil.example", **ask})
    assert "access-control-allow-origin" not in other.headers
    app.state.ctx.password_checks.close()

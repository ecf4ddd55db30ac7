"""The settings checks `exapg up` runs before it changes anything (and `config validate` prints)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exapg import config_check
from exapg.cluster.topology import Mode
from exapg.errors import ConfigurationError, ExitCode
from exapg.runtime.docker import DockerRuntime
from exapg.runtime.local import LocalRuntime
from exapg.runtime.preflight import own_ports
from exapg.settings import Settings
from exapg.stack import Stack
from tests.conftest import stack_environment

Make = Callable[..., Settings]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A stack whose state directory is never created unless something writes to it (pytest's
    0700 tmp_path keeps the service user out: nothing could start there either)."""
    return stack_environment(tmp_path / "state" / "stack")


@pytest.fixture
def settings(env: dict[str, str]) -> Make:
    return lambda **overrides: Settings.load(environ={**env, **overrides})


@pytest.fixture
def bad_settings(env: dict[str, str], taken_port: int) -> Settings:
    """Every refused value of the outside probe at once."""
    return Settings.load(environ={
        **env, "API_SECRET_KEY": "short", "POSTGRES_PASSWORD": "password", "EXAPG_MEMORY_LIMIT": "1",
        "PGBOUNCER_PORT": str(taken_port), "STANDBY_PORT": env["COORDINATOR_PORT"]})


def expect_every_problem(found: list[str]) -> None:
    for start in ("API_SECRET_KEY: too short", "POSTGRES_PASSWORD: too short", "EXAPG_MEMORY_LIMIT:"):
        assert any(line.startswith(start) for line in found), (start, found)
    assert any("COORDINATOR_PORT and STANDBY_PORT" in line and "both use port" in line for line in found), found
    assert any(line.startswith("PGBOUNCER_PORT:") and "already in use" in line for line in found), found
    assert not any("password" in line.split(":", 1)[1] for line in found if ":" in line), "a secret was shown"


def test_every_problem_is_found_at_once(bad_settings):
    expect_every_problem(config_check.problems(bad_settings, ours=set()))


def test_local_up_refuses_bad_settings_before_touching_anything(bad_settings):
    s = bad_settings
    with pytest.raises(ConfigurationError) as info:
        LocalRuntime(s).up(mode=Mode.HA)
    assert info.value.exit_code == ExitCode.CONFIGURATION
    expect_every_problem(info.value.problems)
    assert not s.state_dir.parent.exists(), "no secret stored, no configuration rendered"


def test_docker_up_refuses_bad_settings_before_compose_runs(env, settings):
    s = settings(EXAPG_BACKEND="docker", DOCKER_HOST="unix:///nonexistent.sock", API_SECRET_KEY="short",
                 GRAFANA_PASSWORD="admin", WORKER1_PORT=env["PGBOUNCER_PORT"])
    with pytest.raises(ConfigurationError) as info:  # not the missing engine (exit 4): nothing ran
        DockerRuntime(s).up(mode=Mode.HA)
    found = info.value.problems
    assert any(line.startswith("API_SECRET_KEY: too short") for line in found), found
    assert any(line.startswith("GRAFANA_PASSWORD: too short") for line in found), found
    assert any("PGBOUNCER_PORT and WORKER1_PORT: both use port" in line for line in found), found


@pytest.mark.parametrize(("address", "wanted"), [
    ("999.1.1.1", "is not an IPv4 address"),
    ("127.0.0.1,10.0.0.1", "is not an IPv4 address"),
    ("db.example", "is not an IPv4 address"),
    ("::1", "IPv6 is not supported"),
    ("192.0.2.77", "is not an address of this machine"),  # TEST-NET-1: never configured here
    ("*", "use 0.0.0.0"),  # Prometheus: "listen tcp: lookup *: no such host"
])
def test_listen_address_must_be_one_of_this_machine(settings, address: str, wanted: str):
    found = config_check.problems(settings(EXAPG_LISTEN_ADDRESS=address), ours=set())
    assert [line for line in found if line.startswith("EXAPG_LISTEN_ADDRESS:")] == [
        line for line in found if wanted in line], found
    assert len(found) == 1, "ports are not also reported taken when the address is the problem"


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "localhost"])
def test_usable_listen_addresses(settings, address: str):
    assert config_check.problems(settings(EXAPG_LISTEN_ADDRESS=address), ours=set()) == []


def test_memory_limit_floor(settings):
    assert config_check.memory_problem(settings(EXAPG_MEMORY_LIMIT="1")) is not None
    assert config_check.memory_problem(settings(EXAPG_MEMORY_LIMIT="256MB")) is not None
    assert config_check.memory_problem(settings(EXAPG_MEMORY_LIMIT="512MB")) is None
    assert config_check.memory_problem(settings(EXAPG_MEMORY_LIMIT="1GB")) is None


def test_ports_of_this_stack_are_not_taken(settings, taken_port):
    s = settings(PGBOUNCER_PORT=str(taken_port))
    ports = config_check.local_ports(s)
    assert config_check.taken_problems(s, ports, ours=set()) != []
    assert config_check.taken_problems(s, ports, ours={taken_port}) == []


def test_a_stack_never_set_up_owns_no_port(settings):
    assert own_ports(Stack(settings())) == set()

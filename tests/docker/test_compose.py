"""The compose files of the Docker specification, rendered by docker-compose and checked field by field."""

from __future__ import annotations

import re

import pytest
import yaml

from exapg.exporter.environment import ExporterConfig
from exapg.runtime.docker import compose_files
from tests.docker.compose import (
    BASE,
    COMBINATIONS,
    DOCKER_DIR,
    SECRETS,
    address,
    published,
    render,
    run_config,
)

CORE = {"coordinator", "worker1", "worker2", "worker", "pgbouncer"}
MONITORING = {"prometheus", "grafana", "postgres_exporter", "replication_exporter"}
MGMT = {"management_backend", "management_frontend"}
EXPECTED_SERVICES = {
    "dev": CORE,
    "prod": CORE,
    "full": CORE | MONITORING | MGMT,
    "ha": CORE | {"standby", "replication_exporter"},
    "ha-monitoring": CORE | MONITORING | {"standby"},
    "secure": CORE,
    "everything": CORE | MONITORING | MGMT | {"standby"},
}
SPEC_PORTS = {
    "coordinator": (5432, 5432), "worker1": (5432, 5433), "worker2": (5432, 5434),
    "pgbouncer": (6432, 6432), "prometheus": (9090, 9090), "grafana": (3000, 3000),
    "postgres_exporter": (9187, 9187), "replication_exporter": (9188, 9188),
    "management_backend": (8000, 8000), "management_frontend": (3000, 3001),
    "standby": (5432, 5440),
}
SPEC_ADDRESSES = {"coordinator": "172.20.0.10", "worker1": "172.20.0.11", "prometheus": "172.20.0.20"}
POSTGRES_SERVICES = ("coordinator", "worker1", "worker2", "worker")


@pytest.mark.parametrize("combo", sorted(COMBINATIONS))
def test_every_combination_renders_with_the_expected_services(combo, tmp_path):
    model = render(COMBINATIONS[combo], tmp_path)
    assert set(model["services"]) == EXPECTED_SERVICES[combo]


@pytest.mark.parametrize("combo", sorted(COMBINATIONS))
def test_seed_ports_and_container_names(combo, tmp_path):
    services = render(COMBINATIONS[combo], tmp_path)["services"]
    for name, service in services.items():
        if name == "worker":
            continue
        target, host = SPEC_PORTS[name]
        assert published(service) == {target: host}, name
        assert service["container_name"] == f"exapg_{name}".replace("management_", "mgmt_"), name


def test_ports_follow_their_variables(tmp_path):
    env = {"COORDINATOR_PORT": "15432", "WORKER1_PORT": "15433", "PGBOUNCER_PORT": "16432",
           "PROMETHEUS_PORT": "19090", "EXPORTER_PORT": "19188", "MGMT_FRONTEND_PORT": "13001"}
    services = render(COMBINATIONS["everything"], tmp_path, **env)["services"]
    assert published(services["coordinator"]) == {5432: 15432}
    assert published(services["worker1"]) == {5432: 15433}
    assert published(services["pgbouncer"]) == {6432: 16432}
    assert published(services["prometheus"]) == {9090: 19090}
    assert published(services["replication_exporter"]) == {9188: 19188}
    assert published(services["management_frontend"]) == {3000: 13001}


def test_postgres_environment_and_citus_roles(tmp_path):
    services = render(COMBINATIONS["dev"], tmp_path, POSTGRES_DB="analytics", POSTGRES_USER="exa")["services"]
    for name in POSTGRES_SERVICES:
        env = services[name]["environment"]
        assert env["POSTGRES_DB"] == "analytics"
        assert env["POSTGRES_USER"] == "exa"
        assert env["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert services["coordinator"]["environment"]["CITUS_ROLE"] == "coordinator"
    for name in ("worker1", "worker2", "worker"):
        env = services[name]["environment"]
        assert (env["CITUS_ROLE"], env["COORDINATOR_HOST"], str(env["COORDINATOR_PORT"])) == (
            "worker", "coordinator", "5432")


def test_seed_defaults_for_database_and_user(tmp_path):
    env = render(COMBINATIONS["dev"], tmp_path)["services"]["coordinator"]["environment"]
    assert (env["POSTGRES_DB"], env["POSTGRES_USER"]) == ("exadb", "postgres")


@pytest.mark.parametrize("name", [*POSTGRES_SERVICES])
def test_postgres_health_check_is_the_seeds(name, tmp_path):
    check = render(COMBINATIONS["dev"], tmp_path)["services"][name]["healthcheck"]
    assert check["test"][0] == "CMD-SHELL"
    assert check["test"][1].startswith("pg_isready ")
    assert "-U postgres" in check["test"][1] and "-d exadb" in check["test"][1]
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == (
        "10s", "5s", 5, "30s")


def test_workers_wait_for_a_healthy_coordinator(tmp_path):
    services = render(COMBINATIONS["full"], tmp_path)["services"]
    for name in ("worker1", "worker2", "worker", "pgbouncer", "management_backend", "postgres_exporter"):
        assert services[name]["depends_on"]["coordinator"]["condition"] == "service_healthy", name
    assert "management_backend" in services["management_frontend"]["depends_on"]


def test_scalable_worker_has_nothing_that_collides(tmp_path):
    worker = render(COMBINATIONS["everything"], tmp_path)["services"]["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert address(worker) is None
    assert not any(v.endswith(":/var/lib/postgresql/data") or ":/var/lib/postgresql/data:" in v
                   for v in worker.get("volumes", [])), "replicas would share one data volume"
    assert worker["scale"] == 0
    assert render(COMBINATIONS["dev"], tmp_path, WORKER_REPLICAS="3")["services"]["worker"]["scale"] == 3


def test_network_subnet_addresses_and_labels(tmp_path):
    model = render(COMBINATIONS["everything"], tmp_path)
    network = model["networks"]["exapg_network"]
    assert network["driver"] == "bridge"
    assert network["ipam"]["config"] == [{"subnet": "172.20.0.0/16"}]
    assert network["labels"] == {"com.exapg.network": "main"}
    services = model["services"]
    for name, expected in SPEC_ADDRESSES.items():
        assert address(services[name]) == expected
    fixed = [address(s) for s in services.values() if address(s)]
    assert len(fixed) == len(set(fixed)), "two services share an address"
    assert all(a.startswith("172.20.") for a in fixed)


def test_blue_green_projects_do_not_collide(tmp_path):
    blue = render(COMBINATIONS["full"], tmp_path, COMPOSE_PROJECT_NAME="exapg_blue")
    green = render(COMBINATIONS["full"], tmp_path, COMPOSE_PROJECT_NAME="exapg_green",
                   EXAPG_SUBNET="172.21.0.0/16", EXAPG_IP_PREFIX="172.21",
                   COORDINATOR_PORT="15432", WORKER1_PORT="15433", WORKER2_PORT="15434",
                   PGBOUNCER_PORT="16432", PROMETHEUS_PORT="19090", GRAFANA_PORT="13000",
                   POSTGRES_EXPORTER_PORT="19187", EXPORTER_PORT="19188",
                   MGMT_BACKEND_PORT="18000", MGMT_FRONTEND_PORT="13001")
    assert green["networks"]["exapg_network"]["ipam"]["config"][0]["subnet"] == "172.21.0.0/16"
    for name in blue["services"]:
        b, g = blue["services"][name], green["services"][name]
        if "container_name" in b:
            assert b["container_name"].startswith("exapg_blue_")
            assert g["container_name"].startswith("exapg_green_")
        if address(g):
            assert address(g).startswith("172.21.0.")
        assert not set(published(b).values()) & set(published(g).values()), name


def test_service_labels_for_discovery(tmp_path):
    services = render(COMBINATIONS["everything"], tmp_path)["services"]
    roles = {"coordinator": "coordinator", "worker1": "worker", "worker2": "worker",
             "worker": "worker", "standby": "standby"}
    for name, role in roles.items():
        labels = services[name]["labels"]
        assert labels["com.exapg.monitor"] == "true"
        assert labels["com.exapg.service"] == "database"
        assert labels["com.exapg.role"] == role
    for name in ("prometheus", "postgres_exporter", "replication_exporter"):
        assert services[name]["labels"]["com.exapg.metrics_port"].isdigit()


def test_volumes_and_their_labels(tmp_path):
    volumes = render(COMBINATIONS["everything"], tmp_path)["volumes"]
    for name in ("coordinator_data", "worker1_data", "worker2_data", "standby_data"):
        assert volumes[name]["labels"] == {"com.exapg.volume": "database"}
        assert volumes[name]["driver"] == "local"
    for name in ("prometheus_data", "grafana_data"):
        assert volumes[name]["labels"] == {"com.exapg.volume": "monitoring"}


def test_coordinator_mounts_config_and_init_scripts(tmp_path):
    volumes = render(COMBINATIONS["dev"], tmp_path)["services"]["coordinator"]["volumes"]
    assert "coordinator_data:/var/lib/postgresql/data:rw" in volumes
    assert f"{DOCKER_DIR.parent}/config/postgresql:/etc/postgresql:ro" in volumes
    assert f"{DOCKER_DIR.parent}/sql/init:/docker-entrypoint-initdb.d:ro" in volumes


def test_resource_limits_and_shared_memory(tmp_path):
    coordinator = render(COMBINATIONS["prod"], tmp_path)["services"]["coordinator"]
    resources = coordinator["deploy"]["resources"]
    assert resources["limits"]["memory"] == "4G"
    assert float(resources["limits"]["cpus"]) == 2.0
    assert resources["reservations"]["memory"] == "2G"
    assert float(resources["reservations"]["cpus"]) == 1.0
    assert coordinator["shm_size"] == "256m"


def test_production_binds_host_directories(tmp_path):
    services = render(COMBINATIONS["prod"], tmp_path, EXAPG_DATA_DIR="/srv/exa")["services"]
    volumes = services["coordinator"]["volumes"]
    assert "/srv/exa/coordinator:/var/lib/postgresql/data:rw" in volumes
    assert "/opt/exapg/config:/etc/postgresql:ro" in volumes
    assert "/opt/exapg/logs:/var/log/postgresql:rw" in volumes
    assert not any(v.startswith("coordinator_data:") for v in volumes)
    assert services["coordinator"]["restart"] == "always"


@pytest.mark.parametrize("name", [*POSTGRES_SERVICES])
def test_security_hardening_of_the_seed(name, tmp_path):
    service = render(COMBINATIONS["secure"], tmp_path)["services"][name]
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert service["cap_drop"] == ["ALL"]
    assert sorted(service["cap_add"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
    assert service["read_only"] is True
    assert set(service["tmpfs"]) == {"/tmp", "/var/run/postgresql"}
    assert service["user"] == "999:999"
    env = service["environment"]
    assert env["POSTGRES_SSL"] == "on"
    assert env["POSTGRES_SSL_CERT_FILE"] == "/var/lib/postgresql/ssl/server.crt"
    assert env["POSTGRES_SSL_KEY_FILE"] == "/var/lib/postgresql/ssl/server.key"
    assert f"{DOCKER_DIR.parent}/config/ssl:/var/lib/postgresql/ssl:ro" in service["volumes"]


def test_monitoring_and_management_containers_drop_privileges(tmp_path):
    services = render(COMBINATIONS["full"], tmp_path)["services"]
    for name in MONITORING | MGMT:
        assert services[name]["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in services[name]["security_opt"], name


@pytest.mark.parametrize(
    ("combo", "missing"),
    [("dev", "POSTGRES_PASSWORD"), ("full", "POSTGRES_PASSWORD"), ("full", "API_SECRET_KEY"),
     ("full", "GRAFANA_PASSWORD"), ("ha", "POSTGRES_PASSWORD")],
)
def test_missing_secret_is_refused(combo, missing, tmp_path):
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = run_config(COMBINATIONS[combo], env, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


def test_empty_secret_is_refused(tmp_path):
    result = run_config(COMBINATIONS["dev"], {**SECRETS, "POSTGRES_PASSWORD": ""}, tmp_path)
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def test_no_default_for_any_secret_in_any_file():
    """Required secrets use ${VAR:?}; the one optional one defaults to nothing."""
    pattern = re.compile(r"\$\{(\w*(?:PASSWORD|SECRET)\w*):?-([^}]*)\}")
    for path in DOCKER_DIR.glob("docker-compose*.yml"):
        found = pattern.findall(path.read_text())
        assert all(name == "EXAPG_ADMIN_PASSWORD" and default == "" for name, default in found), (path.name, found)


def test_management_services(tmp_path):
    services = render(COMBINATIONS["full"], tmp_path, MGMT_BACKEND_PORT="18000")["services"]
    backend, frontend = services["management_backend"], services["management_frontend"]
    assert backend["environment"]["API_SECRET_KEY"] == SECRETS["API_SECRET_KEY"]
    assert backend["environment"]["DATABASE_URL"] == "postgresql://postgres@coordinator:5432/exadb"
    assert backend["environment"]["EXAPG_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert frontend["environment"]["REACT_APP_API_URL"] == "http://localhost:18000"
    assert backend["build"]["dockerfile"] == "docker/Dockerfile.mgmt-backend"
    assert frontend["build"]["dockerfile"] == "docker/Dockerfile.mgmt-frontend"


@pytest.mark.parametrize("prefix", [None, "172.21"])
def test_backend_trusts_forwarded_headers_only_from_the_front_end(prefix, tmp_path):
    """nginx (the front end) proxies /api and appends the client's address to
    X-Forwarded-For; any other peer of the published port 8000 must not be believed."""
    env = {} if prefix is None else {"EXAPG_SUBNET": f"{prefix}.0.0/16", "EXAPG_IP_PREFIX": prefix}
    services = render(COMBINATIONS["full"], tmp_path, **env)["services"]
    backend, frontend = services["management_backend"], services["management_frontend"]
    assert address(frontend) == f"{prefix or '172.20'}.0.41"
    assert backend["environment"]["FORWARDED_ALLOW_IPS"] == address(frontend)
    assert "management_backend:8000" in (DOCKER_DIR / "nginx" / "frontend.conf").read_text()


def test_pgbouncer_is_configured_from_the_seeds_variables(tmp_path):
    env = render(COMBINATIONS["dev"], tmp_path)["services"]["pgbouncer"]["environment"]
    assert env == {
        "DATABASES_HOST": "coordinator", "DATABASES_PORT": "5432", "DATABASES_USER": "postgres",
        "DATABASES_PASSWORD": SECRETS["POSTGRES_PASSWORD"], "DATABASES_DBNAME": "exadb",
        "POOL_MODE": "transaction", "MAX_CLIENT_CONN": "100", "DEFAULT_POOL_SIZE": "20",
    }


def test_monitoring_services(tmp_path):
    services = render(COMBINATIONS["full"], tmp_path)["services"]
    prometheus = services["prometheus"]
    assert "--storage.tsdb.retention.time=200h" in prometheus["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "--web.enable-lifecycle" in prometheus["command"]
    # no Docker socket for Prometheus (it would give root on the host), and images as settings
    assert not any("docker.sock" in volume for volume in prometheus["volumes"])
    assert "group_add" not in prometheus
    assert prometheus["image"] == "prom/prometheus:v2.53.2"
    assert render(COMBINATIONS["full"], tmp_path, PROMETHEUS_IMAGE="exapg/prometheus:debian")[
        "services"]["prometheus"]["image"] == "exapg/prometheus:debian"
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_USER"] == "admin"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_PASSWORD"]
    assert services["postgres_exporter"]["healthcheck"]["test"][-1] == "http://127.0.0.1:9187/"
    exporter = services["postgres_exporter"]["environment"]
    assert exporter["DATA_SOURCE_URI"] == "coordinator:5432/exadb?sslmode=disable&citus.node_connection_timeout=2000"
    assert SECRETS["POSTGRES_PASSWORD"] not in exporter["DATA_SOURCE_URI"]


def test_replication_exporter_follows_the_pair_in_ha(tmp_path):
    plain = render(COMBINATIONS["full"], tmp_path)["services"]["replication_exporter"]
    ha = render(COMBINATIONS["ha-monitoring"], tmp_path)["services"]["replication_exporter"]
    for env in (plain["environment"], ha["environment"]):
        assert (env["PRIMARY_HOST"], str(env["PRIMARY_PORT"])) == ("coordinator", "5432")
        assert env["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert not plain["environment"].get("STANDBY_HOST")
    assert "STANDBY_HOSTS" not in plain["environment"]
    assert ha["environment"]["STANDBY_HOSTS"] == "standby:5432"
    assert ha["build"]["dockerfile"] == "docker/Dockerfile.replication-exporter"
    assert ha["depends_on"]["standby"]["condition"] == "service_healthy"


def image_environment() -> dict[str, str]:
    """The ENV defaults of the exporter image (the specification's STANDBY_HOST among them)."""
    text = (DOCKER_DIR / "Dockerfile.replication-exporter").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in line.split()[1:])
    return env


def exporter_in_container(files: list[str], tmp_path, **env: str) -> ExporterConfig:
    """The exporter's settings as the container sees them: the image's ENV, overridden by
    the rendered compose environment (an empty value overrides too)."""
    service = render(files, tmp_path, **env)["services"]["replication_exporter"]
    environment = {key: str(value) for key, value in service["environment"].items()}
    return ExporterConfig.from_env({**image_environment(), **environment})


HA_WITH_MONITORING = {
    "monitoring-then-ha": COMBINATIONS["ha-monitoring"],
    "ha-then-monitoring": [BASE, "docker-compose.ha.yml", "docker-compose.monitoring.yml"],
    "compose-prod-with-ha-with-monitoring": compose_files("prod", ["ha", "monitoring"]),
    "compose-full-with-ha": compose_files("full", ["ha"]),
    "ha-alone": COMBINATIONS["ha"],
}


@pytest.mark.parametrize("order", sorted(HA_WITH_MONITORING))
def test_replication_exporter_watches_the_standby_in_any_file_order(order, tmp_path):
    files = HA_WITH_MONITORING[order]
    config = exporter_in_container(files, tmp_path)
    assert config.primary.label == "coordinator:5432"
    assert [s.label for s in config.standbys] == ["standby:5432"]
    # An external standby named for the monitoring file alone changes nothing with HA.
    config = exporter_in_container(files, tmp_path, EXAPG_STANDBY_HOST="db9.example")
    assert [s.label for s in config.standbys] == ["standby:5432"]


def test_both_file_orders_render_the_same_replication_exporter(tmp_path):
    first, second = (render(HA_WITH_MONITORING[order], tmp_path)["services"]["replication_exporter"]
                     for order in ("monitoring-then-ha", "ha-then-monitoring"))
    assert first == second


def test_ha_and_monitoring_files_never_set_one_exporter_variable_differently():
    """Compose gives a variable both files set to the later file: none may differ."""
    monitoring, ha = (yaml.safe_load((DOCKER_DIR / name).read_text())["services"]
                      ["replication_exporter"]["environment"]
                      for name in ("docker-compose.monitoring.yml", "docker-compose.ha.yml"))
    assert {key for key in monitoring.keys() & ha.keys() if monitoring[key] != ha[key]} == set()


def test_replication_exporter_without_ha_watches_no_standby_or_an_external_one(tmp_path):
    assert exporter_in_container(COMBINATIONS["full"], tmp_path).standbys == ()
    config = exporter_in_container(COMBINATIONS["full"], tmp_path, EXAPG_STANDBY_HOST="db9.example")
    assert [s.label for s in config.standbys] == ["db9.example:5432"]


def test_standby_streams_from_the_coordinator(tmp_path):
    standby = render(COMBINATIONS["ha"], tmp_path)["services"]["standby"]
    env = standby["environment"]
    assert (env["CITUS_ROLE"], env["PRIMARY_HOST"]) == ("standby", "coordinator")
    assert "standby_data:/var/lib/postgresql/data:rw" in standby["volumes"]


def test_every_build_names_an_existing_dockerfile(tmp_path):
    services = render(COMBINATIONS["everything"], tmp_path)["services"]
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["context"] == str(DOCKER_DIR.parent), name
            assert (DOCKER_DIR.parent / service["build"]["dockerfile"]).is_file(), name

"""The specification's compose combinations started on a real Docker engine, as a user would run
them (`docker-compose -f ... up -d` from docker/), each torn down with its volumes.

Every test starts containers; none only renders. They need the images of
`exapg images build` (make test builds them) and skip without an engine.
"""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from tests.docker.engine import citus_in_image, docker, http_get, metric, project, wait_for

pytestmark = pytest.mark.timeout(900)

BASE = "docker-compose.yml"
DEV = [BASE, "docker-compose.override.yml"]
HA = [BASE, "docker-compose.ha.yml"]
HA_MONITORING = [BASE, "docker-compose.monitoring.yml", "docker-compose.ha.yml"]
PSQL = "/usr/lib/postgresql/15/bin/psql"


def psql(conninfo: str, sql: str) -> str:
    """The host's psql through a published port (the password in PGPASSWORD, not argv)."""
    parts = dict(item.split("=", 1) for item in conninfo.split())
    password = parts.pop("password")
    dsn = " ".join(f"{k}={v}" for k, v in parts.items())
    result = subprocess.run([PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                            env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dev_stack_serves_psql_and_keeps_rows_across_down_and_up():
    citus = citus_in_image()
    services = ["coordinator", "pgbouncer", *(["worker1", "worker2"] if citus else [])]
    with project(DEV) as stack:
        stack.compose("up", "-d", *services)
        stack.wait_healthy(*services)
        psql(stack.conninfo(), "CREATE TABLE kept (id int PRIMARY KEY, note text); "
             "INSERT INTO kept SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        assert psql(stack.conninfo("PGBOUNCER_PORT"), "SELECT count(*) FROM kept") == "1000"
        checksum = psql(stack.conninfo(), "SELECT md5(string_agg(note, ',' ORDER BY id)) FROM kept")
        if citus:
            wait_for(lambda: psql(stack.conninfo(), "SELECT string_agg(nodename, ',' ORDER BY nodename) "
                                  "FROM pg_dist_node WHERE noderole = 'primary' AND isactive "
                                  "AND groupid > 0") == "worker1,worker2", 120, "workers registered")
        dump = stack.compose("exec", "-T", "coordinator", "pg_dump", "-U", "postgres", "exadb").stdout
        assert "CREATE TABLE public.kept" in dump and "\r\n" not in dump  # docs/docker.md's command
        volumes = docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.name}")
        assert f"{stack.name}_coordinator_data" in volumes.stdout.split()  # the name the docs derive
        stack.compose("down")
        stack.compose("up", "-d", *services)
        stack.wait_healthy(*services)
        assert psql(stack.conninfo(), "SELECT count(*) FROM kept") == "1000"
        assert psql(stack.conninfo(), "SELECT md5(string_agg(note, ',' ORDER BY id)) FROM kept") == checksum
        settings = psql(stack.conninfo(), "SELECT current_setting('log_statement') || ' ' || "
                        "current_setting('data_checksums') || ' ' || current_setting('password_encryption')")
        assert settings == "ddl on scram-sha-256"  # the override's logging, ExaPG's initdb


def test_ha_standby_streams_and_the_exporter_follows_its_outage():
    with project(HA) as stack:
        stack.compose("up", "-d", "coordinator", "standby", "replication_exporter")
        stack.wait_healthy("coordinator", "standby", "replication_exporter")
        with stack.connect() as primary:
            wait_for(lambda: primary.execute("SELECT state FROM pg_stat_replication WHERE state = 'streaming'"
                                             ).fetchone(), 60, "the standby streaming")
            slot = primary.execute("SELECT active FROM pg_replication_slots WHERE slot_name = 'exapg_standby1'")
            assert slot.fetchone() == (True,)
        metrics = stack.url("EXPORTER_PORT", "/metrics")
        scrape = wait_for(lambda: both_up(http_get(metrics)[1]), 60, "pg_up 1 for both servers")
        assert metric(scrape, "pg_replication_is_replica", instance="standby") == 1

        docker("kill", stack.container("standby"))
        status, text = http_get(metrics)  # the very next scrape
        assert status == 200 and metric(text, "pg_up", instance="standby") == 0
        assert metric(text, "pg_up", instance="primary") == 1
        assert http_get(stack.url("EXPORTER_PORT", "/health"))[0] == 200

        with stack.connect() as primary:
            primary.execute("CREATE TABLE during_outage AS SELECT generate_series(1, 5000) AS id")
        stack.compose("start", "standby")
        stack.wait_healthy("standby")
        with stack.connect("STANDBY_PORT") as standby:
            assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            wait_for(lambda: standby.execute("SELECT count(*) FROM during_outage").fetchone() == (5000,),
                     60, "the standby caught up")
        wait_for(lambda: both_up(http_get(metrics)[1]), 60, "pg_up 1 again")


def both_up(text: str) -> str | None:
    ok = metric(text, "pg_up", instance="primary") == 1 and metric(text, "pg_up", instance="standby") == 1
    return text if ok else None


def test_monitoring_scrapes_every_target_with_the_rules_loaded():
    with project(HA_MONITORING) as stack:
        services = ["coordinator", "standby", "prometheus", "postgres_exporter", "replication_exporter"]
        stack.compose("up", "-d", *services)
        stack.wait_healthy(*services)
        api = stack.url("PROMETHEUS_PORT", "/api/v1")

        def all_targets_up() -> dict[str, str] | None:
            import json
            targets = json.loads(http_get(f"{api}/targets")[1])["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            return health if set(health) == {"prometheus", "postgres_exporter", "replication_exporter"} \
                and set(health.values()) == {"up"} else None

        wait_for(all_targets_up, 120, "every Prometheus target up", interval=3)
        import json
        groups = json.loads(http_get(f"{api}/rules")[1])["data"]["groups"]
        rules = {rule["name"] for group in groups for rule in group["rules"]}
        assert {"PostgreSQLDown", "StandbyNotStreaming"} <= rules, sorted(rules)
        status, text = http_get(stack.url("POSTGRES_EXPORTER_PORT", "/metrics"))
        assert status == 200 and metric(text, "pg_up") == 1
        query = f"{api}/query?query=pg_up%7Bjob%3D%22replication_exporter%22%7D"
        values = wait_for(lambda: json.loads(http_get(query)[1])["data"]["result"], 60, "pg_up in Prometheus")
        assert {v["metric"]["instance"]: v["value"][1] for v in values} == {"primary": "1", "standby": "1"}


def test_grafana_runs_only_where_its_image_can_be_had():
    if docker("image", "inspect", "grafana/grafana:11.2.2", check=False).returncode != 0:
        pytest.skip("grafana/grafana cannot be pulled here and Debian has no Grafana package: its "
                    "provisioning is checked without a container (tests/monitoring/test_dashboards.py)")
    with project([BASE, "docker-compose.monitoring.yml"]) as stack:
        stack.compose("up", "-d", "grafana")
        stack.wait_healthy("grafana")
        assert http_get(stack.url("GRAFANA_PORT", "/api/health"))[0] == 200


def test_security_file_hardens_containers_and_serves_tls(tmp_path):
    from exapg.certs import generate

    ssl = tmp_path / "ssl"
    generate(ssl, hostnames=["localhost", "coordinator"], days=30, owner=(999, 999))
    dirs = {name: tmp_path / name for name in ("data", "config", "logs")}
    files = [BASE, "docker-compose.prod.yml", "docker-compose.security.yml"]
    with project(files, EXAPG_SSL_DIR=str(ssl), EXAPG_DATA_DIR=str(dirs["data"]),
                 EXAPG_CONFIG_DIR=str(dirs["config"]), EXAPG_LOG_DIR=str(dirs["logs"])) as stack:
        prepare_prod_dirs(stack.env)
        stack.compose("up", "-d", "coordinator", "pgbouncer")
        stack.wait_healthy("coordinator", "pgbouncer")
        host = stack.inspect("coordinator")["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["CapDrop"] == ["ALL"]
        assert set(host["CapAdd"]) == {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID",
                                       "CAP_SETUID"} or set(host["CapAdd"]) == {
                                           "CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}
        assert stack.inspect("coordinator")["Config"]["User"] == "999:999"
        assert stack.inspect("pgbouncer")["HostConfig"]["ReadonlyRootfs"] is True
        verified = stack.conninfo(sslmode="verify-full", sslrootcert=str(ssl / "ca.crt"), host="localhost")
        with psycopg.connect(verified, autocommit=True) as conn:
            conn.execute("CREATE TABLE hardened AS SELECT generate_series(1, 100) AS id")
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        with pytest.raises(psycopg.OperationalError, match=r"no encryption|pg_hba\.conf"):
            psycopg.connect(stack.conninfo(sslmode="disable")).close()
        # the server's own log collector writes into the mounted log directory
        assert wait_for(lambda: list(dirs["logs"].glob("postgresql-*.log")), 30, "server log file")


def prepare_prod_dirs(env: dict[str, str]) -> None:
    """What `exapg up --backend docker` does for the production file, run the same way."""
    from exapg.runtime.docker import prepare_production_dirs

    prepare_production_dirs(env)


def test_prod_file_makes_owned_host_directories_restarts_and_rotates_logs(tmp_path):
    dirs = {name: tmp_path / name for name in ("data", "config", "logs")}
    files = [BASE, "docker-compose.prod.yml"]
    with project(files, EXAPG_DATA_DIR=str(dirs["data"]), EXAPG_CONFIG_DIR=str(dirs["config"]),
                 EXAPG_LOG_DIR=str(dirs["logs"])) as stack:
        prepare_prod_dirs(stack.env)
        for path in (dirs["data"] / "coordinator", dirs["data"] / "worker1", dirs["logs"]):
            assert (path.stat().st_uid, path.stat().st_gid) == (999, 999), path
        assert (dirs["data"] / "coordinator").stat().st_mode & 0o777 == 0o700
        assert (dirs["config"] / "postgresql.conf").is_file()
        stack.compose("up", "-d", "coordinator", "pgbouncer")
        stack.wait_healthy("coordinator", "pgbouncer")
        config = stack.inspect("coordinator")["HostConfig"]
        assert config["RestartPolicy"]["Name"] == "always"
        assert config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "5", "max-size": "50m"}}
        assert (dirs["data"] / "coordinator" / "PG_VERSION").is_file()
        with stack.connect() as conn:
            assert conn.execute("SELECT current_setting('logging_collector')").fetchone() == ("on",)


def test_management_ui_through_the_front_end_proxy_shows_the_docker_nodes(page):
    from tests.e2e.browser import log_in, shot

    files = [BASE, "docker-compose.monitoring.yml", "docker-compose.mgmt.yml", "docker-compose.ha.yml"]
    with project(files) as stack:
        services = ["coordinator", "standby", "prometheus", "management_backend", "management_frontend"]
        stack.compose("up", "-d", *services)
        stack.wait_healthy(*services)
        front = stack.url("MGMT_FRONTEND_PORT")
        status, body = http_get(front + "/")
        assert status == 200 and '<div id="root">' in body
        assert http_get(front + "/api/health")[0] == 200  # nginx's /api proxy reaches the backend
        log_in(page, front, "admin", stack.env["EXAPG_ADMIN_PASSWORD"])
        page.wait_for_selector("[data-testid=overview]")
        page.click("text=Cluster")
        page.wait_for_selector("[data-testid=node-coordinator]")
        standby = page.wait_for_selector("[data-testid^=node-][data-testid*=standby]", timeout=30_000)
        assert "streaming" in standby.text_content()
        shot(page, "docker-cluster")
        for header in ("x-frame-options", "content-security-policy"):
            assert header in page.request.get(front + "/").headers

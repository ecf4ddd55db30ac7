"""The Docker images' configuration under config/ is what the local runtime's code renders,
and agrees with the local runtime's on every setting that is not the runtime's own."""

from __future__ import annotations

import difflib
import os
import re
import stat

import pytest
import yaml
from tools import render_config

from exapg.postgres import conf, passfile, pgbouncer
from exapg.settings import Settings
from tests.config_drift import (
    DOCKER_CONF,
    DOCKER_INI,
    pgbouncer_conf,
    pgbouncer_differences,
    server_conf,
    server_differences,
)


@pytest.mark.parametrize("rel", sorted(render_config.outputs()))
def test_committed_file_is_what_the_code_renders(rel):
    committed = (render_config.ROOT / rel).read_text(encoding="utf-8")
    rendered = render_config.outputs()[rel]()
    if committed != rendered:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), rendered.splitlines(True),
                                            rel, "rendered", n=1))
        pytest.fail(f"{rel} is out of date: run 'make config'\n{diff[:6000]}")
    assert "do not edit" in committed.splitlines()[6 if rel.endswith("postgresql.conf") else 3]


def test_check_names_a_stale_file(tmp_path):
    for rel, make in render_config.outputs().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(make(), encoding="utf-8")
    assert render_config.stale(tmp_path) == []
    (tmp_path / "config/postgresql/postgresql.conf").write_text("random_page_cost = 1.1\n")
    assert render_config.stale(tmp_path) == ["config/postgresql/postgresql.conf"]


def test_other_container_limits_render_elsewhere(tmp_path):
    assert render_config.main(["--memory", "16G", "--cpus", "8", "--out", str(tmp_path)]) == 0
    params = server_conf((tmp_path / "postgresql.conf").read_text())
    assert params["shared_buffers"] == "4096MB" and params["max_parallel_workers"] == "8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pg_hba.conf", "pgbouncer.ini.template",
                                                          "postgresql.conf"]


@pytest.mark.parametrize("citus", [True, False])
def test_image_and_local_node_differ_only_where_they_run(citus, tmp_path):
    local = conf.server_settings(
        port=5499, listen="127.0.0.1", socket_dir=tmp_path, name="exapg/coordinator",
        resources=conf.Resources(24 * conf.GiB, 2), huge_pages="off", citus=citus,
    )
    docker = server_conf(DOCKER_CONF.read_text())
    assert server_differences(local, docker, citus=citus) == {}
    assert {k: docker[k] for k in conf.citus_settings()} == conf.citus_settings()


def test_image_is_tuned_as_measured():
    docker = server_conf(DOCKER_CONF.read_text())
    assert docker["random_page_cost"] == "2"  # bench/tpch: 1.1 picks nested loops (Q3)
    assert docker["listen_addresses"] == "*" and docker["hba_file"] == "/etc/postgresql/pg_hba.conf"
    assert docker["shared_buffers"] == "1024MB" and docker["huge_pages"] == "try"


def test_container_work_mem_lets_a_parallel_hash_fit_in_shm():
    res = conf.CONTAINER
    tuned = conf.analytics_tuning(res)
    work_mem = int(tuned["work_mem"].removesuffix("MB")) * conf.MiB
    participants = 1 + int(tuned["max_parallel_workers_per_gather"])
    assert work_mem * float(tuned["hash_mem_multiplier"]) * participants <= res.shm / 2
    # without a /dev/shm limit (the local runtime) the work_mem of bench/tpch is kept
    assert conf.analytics_tuning(conf.Resources(24 * conf.GiB, 2))["work_mem"] == "128MB"


def test_image_hba_is_scram_only_for_every_address():
    rules = [line.split() for line in (DOCKER_CONF.parent / "pg_hba.conf").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules == [["local", "all", "all", "scram-sha-256"], ["host", "all", "all", "all", "scram-sha-256"],
                     ["local", "replication", "all", "scram-sha-256"],
                     ["host", "replication", "all", "all", "scram-sha-256"]]


def test_pgbouncer_template_and_local_ini_differ_only_where_they_run(tmp_path):
    settings = Settings(_env_file=None)
    local = pgbouncer.render_ini(settings, coordinator_port=5499, auth_file=tmp_path / "userlist.txt",
                                 socket_dir=tmp_path)
    docker = pgbouncer_conf(DOCKER_INI.read_text())
    assert pgbouncer_differences(pgbouncer_conf(local), docker) == {}
    assert set(pgbouncer_conf(local)) == set(docker)


def test_userlist_doubles_quotes():
    assert pgbouncer.render_userlist('a"b', 'x"y') == '"a""b" "x""y"\n'


def test_passfile_escapes_and_is_private(tmp_path, monkeypatch):
    target = tmp_path / "run" / "pgpass"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("pa:ss\\word\n"))
    assert passfile.main([str(target), "postgres"]) == 0
    assert target.read_text() == "*:*:*:postgres:pa\\:ss\\\\word\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_passfile_refuses_an_empty_password(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    assert passfile.main([str(tmp_path / "pgpass"), "postgres"]) == 5
    assert not (tmp_path / "pgpass").exists()


def test_tls_hba_rejects_plain_clients_from_the_gateway_only():
    hba = conf.render_hba("all", ("127.0.0.1/32", "10.5.0.0/16"), tls_from=("10.5.0.1/32",))
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    for database in ("all", "replication"):
        mine = [rule for rule in rules if rule[1] == database]
        assert [r[0] for r in mine] == ["local", "hostnossl", "host", "host", "hostssl"]
        assert mine[1][3:] == ["10.5.0.1/32", "reject"] and mine[-1][3] == "all"
    assert conf.main(["tls-hba"]) == 2


def test_container_resources_are_the_compose_files_limits():
    compose = yaml.safe_load((render_config.ROOT / "docker" / "docker-compose.yml").read_text())
    coordinator = compose["services"]["coordinator"]
    limits = coordinator["deploy"]["resources"]["limits"]
    default = re.compile(r"\$\{[A-Z_]+:-([^}]+)\}")
    assert render_config.parse_size(default.fullmatch(limits["memory"]).group(1)) == conf.CONTAINER.memory
    assert float(default.fullmatch(limits["cpus"]).group(1)) == conf.CONTAINER.cpus
    for name, service in compose["services"].items():
        if "shm_size" in service or name == "coordinator":
            assert render_config.parse_size(service["shm_size"]) == conf.CONTAINER.shm, name

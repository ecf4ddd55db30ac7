"""pgBackRest's configuration, recovery targets and the reading of its answers: pure functions.
The commands themselves run against real servers in tests/integration/test_backup.py."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest

from exapg.backup import pgbackrest
from exapg.backup.pgbackrest import Paths, StanzaNode, Target
from exapg.cluster.topology import Mode, Topology
from exapg.config_check import problems
from exapg.errors import InvalidParameterError
from exapg.runtime import archiving
from exapg.settings import Settings
from exapg.stack import Stack

PATHS = Paths(Path("/s/conf/pgbackrest.conf"), Path("/s/logs/pgbackrest"), Path("/s/run/pgbackrest"), Path("/s/run"))
NODES = [StanzaNode("coordinator", Path("/s/data/coordinator"), 5432),
         StanzaNode("worker1", Path("/s/data/worker1"), 5433)]
S3 = {"EXAPG_BACKUP_REPO_TYPE": "s3", "EXAPG_BACKUP_S3_ENDPOINT": "minio.internal:9000",
      "EXAPG_BACKUP_S3_BUCKET": "backups", "EXAPG_BACKUP_S3_REGION": "eu-central-1",
      "EXAPG_BACKUP_S3_KEY": "AKIAEXAMPLE", "EXAPG_BACKUP_S3_KEY_SECRET": "s3cr3t-value",
      "EXAPG_BACKUP_S3_URI_STYLE": "path", "EXAPG_BACKUP_S3_VERIFY_TLS": "false"}


def settings(**env: str) -> Settings:
    return Settings.load(environ={"EXAPG_STATE_DIR": "/s", "EXAPG_ENV_FILE": "/nonexistent", **env})


def rendered(config: Settings) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(pgbackrest.render_config(config, NODES, PATHS))
    return parser


def test_the_default_repository_is_in_the_state_directory_with_documented_retention():
    conf = rendered(settings())
    glob = conf["global"]
    assert glob["repo1-type"] == "posix" and glob["repo1-path"] == "/s/backup"
    assert glob["repo1-retention-full"] == "2" and glob["repo1-retention-diff"] == "6"
    assert glob["start-fast"] == "y" and glob["lock-path"] == "/s/run/pgbackrest"
    assert not any(key.startswith("repo1-s3") for key in glob)
    assert conf.sections() == ["global", "coordinator", "worker1"]
    assert dict(conf["worker1"]) == {"pg1-path": "/s/data/worker1", "pg1-port": "5433",
                                     "pg1-socket-path": "/s/run", "pg1-user": "postgres"}


def test_settings_choose_the_repository_and_retention():
    glob = rendered(settings(EXAPG_BACKUP_REPO="/mnt/other-disk/exapg", EXAPG_BACKUP_RETENTION_FULL="4",
                             EXAPG_BACKUP_RETENTION_DIFF="3"))["global"]
    assert glob["repo1-path"] == "/mnt/other-disk/exapg"
    assert (glob["repo1-retention-full"], glob["repo1-retention-diff"]) == ("4", "3")


def test_an_s3_repository_is_rendered_from_its_settings():
    glob = rendered(settings(**S3))["global"]
    assert glob["repo1-type"] == "s3" and glob["repo1-path"] == "/exapg/exapg"
    assert glob["repo1-s3-endpoint"] == "minio.internal:9000" and glob["repo1-s3-bucket"] == "backups"
    assert glob["repo1-s3-region"] == "eu-central-1" and glob["repo1-s3-key"] == "AKIAEXAMPLE"
    assert glob["repo1-s3-key-secret"] == "s3cr3t-value"
    assert glob["repo1-s3-uri-style"] == "path" and glob["repo1-storage-verify-tls"] == "n"


def test_the_s3_secret_may_come_from_a_file(tmp_path):
    secret = tmp_path / "s3.key"
    secret.write_text("from-a-file\n")
    env = {k: v for k, v in S3.items() if k != "EXAPG_BACKUP_S3_KEY_SECRET"}
    conf = rendered(settings(**env, EXAPG_BACKUP_S3_KEY_SECRET_FILE=str(secret)))
    assert conf["global"]["repo1-s3-key-secret"] == "from-a-file"


def test_an_incomplete_s3_repository_is_refused_with_every_missing_setting():
    found = [p for p in problems(settings(EXAPG_BACKUP_REPO_TYPE="s3"), backend="local") if "S3" in p]
    assert len(found) == 5 and all("required with EXAPG_BACKUP_REPO_TYPE=s3" in p for p in found)
    assert not [p for p in problems(settings(**S3), backend="local") if "S3" in p]


def test_the_archive_command_pushes_from_the_node_s_own_data_directory():
    command = pgbackrest.archive_command(PATHS.config, "worker1", Path("/s/data/worker1"))
    assert command.endswith("--config=/s/conf/pgbackrest.conf --stanza=worker1 --pg1-path=/s/data/worker1 "
                            "archive-push %p")


@pytest.mark.parametrize(("target", "options"), [
    (Target("latest"), ["--type=default"]),
    (Target("time", "2026-12-03 13:45:00.000000+00"),
     ["--type=time", "--target=2026-12-03 13:45:00.000000+00", "--target-action=promote"]),
    (Target("lsn", "0/3000060"), ["--type=lsn", "--target=0/3000060", "--target-action=promote"]),
    (Target("name", "before-upgrade"), ["--type=name", "--target=before-upgrade", "--target-action=promote"]),
])
def test_recovery_targets(target, options):
    assert pgbackrest.target_options(target) == options


@pytest.mark.parametrize(("given", "expected"), [
    ("2026-12-03T13:45:00Z", "2026-12-03 13:45:00.000000+00"),
    ("2026-12-03 13:45:00", "2026-12-03 13:45:00.000000+00"),  # no zone: UTC
    ("2026-12-03 15:45:00.25+02:00", "2026-12-03 13:45:00.250000+00"),
])
def test_times_are_read_as_iso_8601(given, expected):
    assert pgbackrest.parse_time(given) == expected


@pytest.mark.parametrize("bad", [lambda: pgbackrest.parse_time("yesterday"),
                                 lambda: pgbackrest.target_options(Target("lsn", "3000060")),
                                 lambda: pgbackrest.check_name("a name; rm -rf /")])
def test_bad_targets_are_invalid_parameters(bad):
    with pytest.raises(InvalidParameterError):
        bad()


INFO = [{
    "name": "coordinator", "status": {"code": 0, "message": "ok"},
    "archive": [{"id": "15-1", "min": "000000010000000000000003", "max": "000000010000000000000007"}],
    "backup": [
        {"label": "20261203-131749F", "type": "full", "timestamp": {"start": 1796303869, "stop": 1796303880},
         "info": {"size": 30764421, "delta": 30764421, "repository": {"size": 6070915, "delta": 6070915}},
         "archive": {"start": "000000010000000000000005", "stop": "000000010000000000000005"},
         "lsn": {"start": "0/5000028", "stop": "0/500F310"}, "prior": None, "error": False},
        {"label": "20261203-131749F_20261203-131801I", "type": "incr",
         "timestamp": {"start": 1796303881, "stop": 1796303883},
         "info": {"size": 30788997, "delta": 1671434, "repository": {"size": 6072437, "delta": 319158}},
         "archive": {"start": "000000010000000000000006", "stop": "000000010000000000000007"},
         "lsn": {"start": "0/6000028", "stop": "0/7000050"}, "prior": "20261203-131749F", "error": False},
    ],
}, {"name": "worker1", "status": {"code": 1, "message": "missing stanza path"}, "archive": [], "backup": []}]


def test_info_is_typed():
    coordinator, worker = pgbackrest.parse_info(json.dumps(INFO))
    assert coordinator.exists and not worker.exists
    assert (coordinator.wal_min, coordinator.wal_max) == ("000000010000000000000003", "000000010000000000000007")
    full, incr = coordinator.backups
    assert full.type == "full" and full.duration == 11 and full.repository_size == 6070915
    assert incr.prior == full.label and incr.delta == 1671434 and incr.lsn_stop == "0/7000050"


VERIFY_DAMAGED = """\
2026-12-03 13:18:12.668 P00   INFO: verify command begin 2.45: --config=/s/conf/pgbackrest.conf
2026-12-03 13:18:13.124 P01   INFO: invalid checksum '20261203-131749F/pg_data/base/5/2686.lz4'
stanza: coordinator
status: error
  backup: 20261203-131749F, status: invalid, total files checked: 1288, total valid files: 1287
    missing: 0, checksum invalid: 1, size invalid: 0, other: 0
2026-12-03 13:18:13.260 P00   INFO: verify command end: completed successfully (593ms)
"""
VERIFY_OK = """\
stanza: coordinator
status: ok
  archiveId: 15-1, total WAL checked: 18, total valid WAL: 18
"""


def test_verify_findings_are_read_from_its_workers():
    damaged = pgbackrest.parse_verify("coordinator", VERIFY_DAMAGED)
    assert not damaged.ok
    assert damaged.problems == ("invalid checksum '20261203-131749F/pg_data/base/5/2686.lz4'",)
    assert pgbackrest.parse_verify("coordinator", VERIFY_OK).ok
    assert not pgbackrest.parse_verify("coordinator", "").ok  # no verdict is no pass


# -- archiving in an ha pair --------------------------------------------------------------------------
def pair(primary: str) -> Topology:
    return Topology.build(settings(), Mode.HA, primary=primary)


@pytest.mark.parametrize("primary", ["coordinator", "standby"])
def test_only_the_primary_has_an_archive_command_and_it_pushes_into_the_coordinator_stanza(primary):
    stack, topology = Stack(settings()), pair(primary)
    own = archiving.node_settings(stack, topology.coordinator)
    assert own["archive_mode"] == "on" and own["archive_timeout"] == "60s"
    assert own["archive_command"].endswith(f"--stanza=coordinator --pg1-path=/s/data/{primary} archive-push %p")
    # archive_mode on as well: promoted by a switchover, the standby archives after a reload
    assert archiving.node_settings(stack, topology.standbys[0]) == {**own, "archive_command": ""}


def test_the_coordinator_stanza_names_the_pair_s_primary_now():
    ports = settings()
    assert [(n.name, n.datadir, n.port) for n in archiving.stanza_nodes(pair("coordinator"))] == [
        ("coordinator", Path("/s/data/coordinator"), ports.coordinator_port)]
    assert [(n.name, n.datadir, n.port) for n in archiving.stanza_nodes(pair("standby"))] == [
        ("coordinator", Path("/s/data/standby"), ports.standby_port)]


def test_workers_are_stanzas_of_their_own_names():
    topology = Topology.build(settings(), Mode.CLUSTER, workers=2, standby=True)
    assert [archiving.stanza(n) for n in archiving.primaries(topology)] == ["coordinator", "worker1", "worker2"]
    assert archiving.node_settings(Stack(settings()), topology.node("worker2"))["archive_command"].endswith(
        "--stanza=worker2 --pg1-path=/s/data/worker2 archive-push %p")
    assert archiving.node_settings(Stack(settings()), topology.standbys[0])["archive_command"] == ""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from exapg.cli.stack import parse_since
from exapg.config_check import duplicate_problems, password_problem
from exapg.errors import InvalidParameterError
from exapg.runtime import logs
from exapg.settings import Settings


def test_parse_stamp_formats():
    pg = logs.parse_stamp("2026-11-23 22:35:23.399 UTC [5162] LOG x")
    assert pg == datetime(2026, 11, 23, 22, 35, 23, 399000, tzinfo=UTC).timestamp()
    py = logs.parse_stamp("2026-11-23T22:35:23,5+01:00 INFO y")
    assert py == datetime(2026, 11, 23, 21, 35, 23, 500000, tzinfo=UTC).timestamp()
    assert logs.parse_stamp("no stamp here") is None


def test_read_merges_filters_and_inherits_stamps(tmp_path: Path):
    a = tmp_path / "a.log"
    b = tmp_path / "b.log"
    a.write_text("2026-01-01 00:00:01 UTC one\n  continued\n2026-01-01 00:00:05 UTC three\n")
    b.write_text("2026-01-01 00:00:03 UTC two\n")
    out = list(logs.read(logs.service_logs(tmp_path), follow=False, since=None, timestamps=False))
    assert out == ["a | 2026-01-01 00:00:01 UTC one", "a |   continued", "b | 2026-01-01 00:00:03 UTC two",
                   "a | 2026-01-01 00:00:05 UTC three"]
    since = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC).timestamp()
    late = list(logs.read({"a": a}, follow=False, since=since, timestamps=True))
    assert late == ["a | 2026-01-01T00:00:05.000+00:00 2026-01-01 00:00:05 UTC three"]


def test_parse_since():
    assert abs(parse_since("1h") - (datetime.now(UTC).timestamp() - 3600)) < 5
    assert parse_since("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    with pytest.raises(InvalidParameterError):
        parse_since("yesterday-ish")


def test_password_rules():
    s = Settings.load(environ={"EXAPG_ENV_FILE": "/none"})
    assert password_problem("P", "short", s) is not None
    assert password_problem("P", "alllowercaseletters", s) is not None
    assert password_problem("P", "aaaaaaaaaaaaaaaaaaaaaaaa", s) is not None
    assert password_problem("P", "Tr0ub4dor&3-horse", s) is None
    assert password_problem("P", "correct horse battery staple", s) is None


def test_duplicate_ports():
    found = duplicate_problems({"COORDINATOR_PORT": 5432, "STANDBY_PORT": 5432, "PGBOUNCER_PORT": 6432})
    assert found == ["COORDINATOR_PORT and STANDBY_PORT: both use port 5432"]

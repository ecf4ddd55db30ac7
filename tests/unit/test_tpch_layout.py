"""The loader's layouts and how it shares work between sessions (no server)."""

from __future__ import annotations

import threading
import time

import pytest

from exapg.errors import InvalidParameterError
from exapg.tpch.load import Builds, build_jobs, layout_named, share_out
from exapg.tpch.schema import EXAPG, PLAIN, PRIMARY_KEYS, TABLES


def test_two_sessions_lineitem_alone_on_one_everything_else_on_the_other():
    shares = share_out(list(TABLES), 2)
    assert shares[0] == ["lineitem"]
    assert sorted(shares[1]) == sorted(t for t in TABLES if t != "lineitem")


@pytest.mark.parametrize("sessions", [1, 3, 4, 8])
def test_every_table_is_loaded_by_exactly_one_session(sessions):
    shares = share_out(list(TABLES), sessions)
    assert len(shares) == sessions
    assert sorted(t for share in shares for t in share) == sorted(TABLES)


def test_the_exapg_layout_indexes_dates_with_brin_and_keeps_the_join_keys():
    indexes = EXAPG.indexes()
    brin = {(t, c) for t, c, method in indexes if method == "brin"}
    assert brin == {("orders", ("o_orderdate",)), ("lineitem", ("l_shipdate", "l_receiptdate", "l_commitdate"))}
    btree = {(t, c) for t, c, method in indexes if method == "btree"}
    assert ("lineitem", ("l_partkey", "l_suppkey")) in btree and ("orders", ("o_custkey",)) in btree
    assert not any(c[0].endswith("date") for _, c in btree)
    assert set(EXAPG.order) == {"lineitem", "orders"} and EXAPG.freeze and EXAPG.sessions > 1


def test_every_carried_column_belongs_to_a_key_or_index_the_layout_builds():
    """A misspelt key in Layout.include would silently build the index without it."""
    built = {(t, c) for t, c, method in EXAPG.indexes() if method == "btree"} | set(PRIMARY_KEYS.items())
    assert set(EXAPG.include) <= built, set(EXAPG.include) - built
    assert EXAPG.include[("lineitem", PRIMARY_KEYS["lineitem"])] == ("l_quantity",)
    assert PLAIN.include == {}


def test_the_plain_layout_is_a_stock_users_load():
    assert PLAIN.order == {} and PLAIN.brin == {} and not PLAIN.freeze and PLAIN.sessions == 1
    assert {(t, c) for t, c, _ in PLAIN.indexes()} >= {("lineitem", ("l_shipdate",)), ("orders", ("o_orderdate",))}
    assert set(PRIMARY_KEYS) == set(TABLES)


def test_an_unknown_layout_is_one_clear_line():
    assert layout_named("plain") is PLAIN and layout_named("exapg") is EXAPG
    with pytest.raises(InvalidParameterError, match="invalid --layout 'sorted': use exapg or plain"):
        layout_named("sorted")


class Recorder:
    """A session that records when each statement starts and ends (the Builds scheduler only
    calls execute); `fail_on`: statements containing it fail."""

    def __init__(self, log: list[tuple[str, str]], lock: threading.Lock, fail_on: str | None = None) -> None:
        self.log, self.lock, self.fail_on = log, lock, fail_on

    def execute(self, statement, params=None):
        text = statement if isinstance(statement, str) else statement.as_string(None)
        if "set_config" in text:
            return
        with self.lock:
            self.log.append(("start", text))
        time.sleep(0.01)
        if self.fail_on and self.fail_on in text:
            raise RuntimeError(f"failed: {text}")
        with self.lock:
            self.log.append(("end", text))


def test_builds_start_while_lineitem_still_copies_and_statistics_follow_the_indexes():
    log: list[tuple[str, str]] = []
    lock = threading.Lock()
    builds = Builds(build_jobs(EXAPG, columnar=False), TABLES, lambda _text: None)
    others = [t for t in TABLES if t != "lineitem"]
    builds.copied(others)
    helper = threading.Thread(target=builds.work, args=(Recorder(log, lock),))
    helper.start()
    # lineitem is still "copying": the other tables' indexes and statistics are built meanwhile
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            early = [text for kind, text in log if kind == "end"]
        if sum(text.startswith("ANALYZE") for text in early) == len(others):
            break
        time.sleep(0.05)
    assert sum(text.startswith("ANALYZE") for text in early) == len(others)
    assert helper.is_alive() and not any('"lineitem"' in text for _, text in log)
    builds.copied(["lineitem"])
    builds.work(Recorder(log, lock))
    helper.join(timeout=10)
    assert not helper.is_alive() and not builds.pending
    ends = [text for kind, text in log if kind == "end"]
    assert len(ends) == len(build_jobs(EXAPG, columnar=False))
    for table in TABLES:  # a table's ANALYZE starts only after every index on it ended
        analyze = log.index(("start", f'ANALYZE "tpch_load"."{table}"'))
        index_ends = [i for i, (kind, text) in enumerate(log)
                      if kind == "end" and "INDEX" in text and f'"tpch_load"."{table}"' in text]
        assert index_ends and max(index_ends) < analyze, table
    phases = builds.phases()
    assert phases["indexes"] > 0 and phases["analyze"] > 0


def test_a_failed_copy_stops_the_sessions_waiting_for_its_table():
    builds = Builds(build_jobs(EXAPG, columnar=False), TABLES, lambda _text: None)
    builds.copied([t for t in TABLES if t != "lineitem"])
    log: list[tuple[str, str]] = []
    waiting = threading.Thread(target=builds.work, args=(Recorder(log, threading.Lock()),))
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive()  # the other tables are built; it waits for lineitem's copy
    builds.fail()  # lineitem's copy failed
    waiting.join(timeout=5)
    assert not waiting.is_alive()
    assert not any('"lineitem"' in text for _, text in log)


def test_a_failed_build_stops_the_other_sessions_and_is_raised():
    builds = Builds(build_jobs(PLAIN, columnar=False), TABLES, lambda _text: None)
    builds.copied(list(TABLES))
    log: list[tuple[str, str]] = []
    with pytest.raises(RuntimeError, match="failed: CREATE UNIQUE INDEX"):
        builds.work(Recorder(log, threading.Lock(), fail_on="lineitem_pkey"))
    builds.work(Recorder(log, threading.Lock()))  # another session: nothing more starts
    assert [text for kind, text in log if kind == "start"] == [log[0][1]]
    assert "lineitem_pkey" in log[0][1]


def test_the_exapg_layout_copies_in_text_format_and_the_plain_one_in_csv():
    assert EXAPG.copy_format == "text" and PLAIN.copy_format == "csv"

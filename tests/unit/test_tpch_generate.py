"""Generating TPC-H in parts (bounded memory at large scale factors) gives the same rows."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from exapg.tpch import load
from exapg.tpch.schema import EXAPG, TABLES

duck = pytest.importorskip("exapg.tpch.duck")
pytest.importorskip("duckdb_extension_tpch", reason="the tpch extra is not installed (pip install '.[tpch]')")


def test_parts_above_one_scale_factor_each():
    assert [load.generation_steps(sf) for sf in (0.01, 1, 1.5, 10, 100)] == [1, 1, 2, 10, 100]


def signatures(con) -> dict[str, tuple[int, int]]:
    return {t: con.execute(f"SELECT count(*), coalesce(sum(hash(x)::hugeint), 0) FROM {t} AS x").fetchone()
            for t in TABLES}


def test_the_parts_add_up_to_the_whole():
    whole = duck.connect(1)
    load.generate(whole, 0.01, 1, 0)
    expected = signatures(whole)
    whole.close()
    parts = duck.connect(1)
    total = dict.fromkeys(TABLES, (0, 0))
    for step in range(3):
        load.generate(parts, 0.01, 3, step)
        for table, (rows, digest) in signatures(parts).items():
            total[table] = (total[table][0] + rows, total[table][1] + digest)
            parts.execute(f"DROP TABLE {table}")
    parts.close()
    assert total == expected
    assert expected["lineitem"][0] == 60_175 and expected["nation"][0] == 25


def test_following_a_file_reads_what_is_written_until_the_writer_is_done(tmp_path):
    """The COPY reads DuckDB's spool file as it grows: an empty read is a pause, not the end."""
    path = tmp_path / "spool"
    path.write_bytes(b"")
    written = threading.Event()
    parts = [b"1|a\n", b"2|b\n3|", b"c\n"]

    def writer() -> None:
        with open(path, "ab", buffering=0) as out:
            for part in parts:
                time.sleep(0.1)  # the reader meets the end of the file between parts
                out.write(part)
        written.set()

    thread = threading.Thread(target=writer)
    with open(path, "rb") as stream:
        thread.start()
        got = b"".join(load.following(stream, written, wait=0.01))
    thread.join()
    assert got == b"".join(parts)


def test_following_ends_at_once_when_the_writer_is_done_and_all_is_read(tmp_path):
    path = tmp_path / "spool"
    path.write_bytes(b"x" * (load.CHUNK + 10))
    written = threading.Event()
    written.set()
    with open(path, "rb") as stream:
        chunks = list(load.following(stream, written, wait=60))
    assert [len(c) for c in chunks] == [load.CHUNK, 10]


def test_date_slices_of_the_stashed_parts_give_the_whole_in_date_order(tmp_path):
    """Above SF 1 the fact tables go in by slices of dates from the stash of every part: the
    slices, one after the other, are exactly the rows of one generation in date order."""
    whole = duck.connect(1)
    load.generate(whole, 0.01, 1, 0)
    expected = {t: whole.execute(load.ordered(order)).fetchall() for t, order in EXAPG.order.items()}
    whole.close()
    parts = duck.connect(1)
    parts.execute(f"ATTACH '{tmp_path / 'stash.duckdb'}' AS stash")
    for step in range(3):
        load.generate(parts, 0.01, 3, step)
        load.stash(parts, EXAPG.order, step == 0)
        for table in TABLES:
            parts.execute(f"DROP TABLE {table}")
    for table, order in EXAPG.order.items():
        slices = load.date_slices(parts, table, order, 3)
        assert len(slices) == 3
        got = [row for query in slices for row in parts.execute(query).fetchall()]
        assert len(got) == len(expected[table]) and got == expected[table], table
    parts.close()


def test_a_stash_left_by_a_killed_load_is_removed_by_the_next(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"{load.STASH_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{load.STASH_PREFIX}{os.getpid()}-def"
    other = tmp_path / "exapg-tpch-stash-notapid-x"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "stash.duckdb").write_bytes(b"x")
    assert load.remove_stale_stashes(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])

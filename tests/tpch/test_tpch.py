"""TPC-H against a real local stack: load SF 0.01 with COPY, run and check all 22 answers."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from exapg.errors import ExaPGError
from exapg.postgres.conn import connect
from exapg.tpch import duck, load
from tests.conftest import EXAPG, cli_environment, new_state_dir, run_cli, stack_environment
from tests.e2e.browser import log_in, shot

pytest.importorskip("duckdb_extension_tpch", reason="the tpch extra is not installed (pip install '.[tpch]')")
pytestmark = pytest.mark.integration

LINEITEM_SF001 = 60_175


@pytest.fixture(scope="module")
def loaded(ha_stack):
    result = ha_stack.cli("sample", "tpch", "--sf", "0.01", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sample_loads_every_table_with_keys_and_statistics(ha_stack, loaded):
    assert loaded["scale_factor"] == 0.01 and loaded["rows"]["lineitem"] == LINEITEM_SF001
    assert loaded["rows_per_second"] > 0
    with connect(ha_stack.coordinator) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM tpch.{t}").fetchone()[0] for t in loaded["rows"]}
        keys = conn.execute("SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                            "WHERE n.nspname = 'tpch' AND c.contype = 'p'").fetchone()[0]
        analyzed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'tpch' "
                                "AND last_analyze IS NOT NULL").fetchone()[0]
    assert counts == loaded["rows"]
    assert keys == 8 and analyzed >= 8


def test_the_default_layout_is_frozen_in_date_order_with_brin(ha_stack, loaded):
    """exapg's layout: no VACUUM pass, yet every page all-visible (COPY FREEZE); the fact
    tables in date order, with block-range indexes on the dates."""
    assert loaded["layout"] == "exapg"
    with connect(ha_stack.coordinator) as conn:
        pages = conn.execute("SELECT c.relname, c.relpages, c.relallvisible FROM pg_class c JOIN pg_namespace n "
                             "ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relkind = 'r' "
                             "AND c.relname <> 'exapg_tpch_load'").fetchall()
        vacuumed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'tpch' "
                                "AND last_vacuum IS NOT NULL").fetchone()[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")  # contrib, for the frozen-page count
        frozen = conn.execute("SELECT all_frozen, (SELECT relpages FROM pg_class WHERE oid = 'tpch.lineitem'"
                              "::regclass) FROM pg_visibility_map_summary('tpch.lineitem')").fetchone()
        brin = {r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am m ON m.oid = c.relam "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE m.amname = 'brin' AND i.indrelid IN ('tpch.lineitem'::regclass, 'tpch.orders'::regclass)")}
        correlation = dict(conn.execute(
            "SELECT attname, correlation FROM pg_stats WHERE schemaname = 'tpch' "
            "AND (tablename, attname) IN (('orders', 'o_orderdate'), ('lineitem', 'l_shipdate'))").fetchall())
    assert len(pages) == 8 and all(visible == relpages for _, relpages, visible in pages), pages
    assert vacuumed == 0 and frozen[0] == frozen[1] > 0, frozen
    assert brin == {"o_orderdate", "l_shipdate", "l_receiptdate", "l_commitdate"}
    assert correlation["o_orderdate"] > 0.99 and correlation["l_shipdate"] > 0.9, correlation


def test_lineitems_covering_indexes_make_the_hot_sums_index_only(ha_stack, loaded):
    """Q18's per-order sums and Q17's per-part sums read only an index, with no heap fetch
    (every page is all-visible from COPY FREEZE), though the table is in date order."""
    with connect(ha_stack.coordinator) as conn:
        definitions = dict(conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'tpch' AND tablename = 'lineitem'"))
        conn.execute("SET enable_hashagg = off")  # the sorted path, whatever this small SF's costs say
        conn.execute("SET enable_seqscan = off")
        per_order = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN (ANALYZE, COSTS off, TIMING off, SUMMARY off) SELECT l_orderkey FROM tpch.lineitem "
            "GROUP BY l_orderkey HAVING sum(l_quantity) > 300"))
        per_part = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN (ANALYZE, COSTS off, TIMING off, SUMMARY off) SELECT avg(l_quantity) FROM tpch.lineitem "
            "WHERE l_partkey = 7 AND l_shipdate >= date '1994-01-01'"))
    assert definitions["lineitem_pkey"].endswith("(l_orderkey, l_linenumber) INCLUDE (l_quantity)"), definitions
    assert any(d.endswith("(l_partkey, l_suppkey) INCLUDE (l_quantity, l_shipdate)") for d in definitions.values())
    assert not any(d.endswith("(l_suppkey)") for d in definitions.values()), definitions
    assert "Index Only Scan using lineitem_pkey" in per_order and "Heap Fetches: 0" in per_order, per_order
    assert "Index Only Scan using lineitem_l_partkey" in per_part and "Heap Fetches: 0" in per_part, per_part


def test_in_parts_the_fact_tables_keep_one_date_order_across_the_parts(ha_stack, tmp_path, monkeypatch):
    """Above SF 1 the data is generated in parts (here SF 0.01 in 3). orders and lineitem
    still go in in one date order over the whole table, not part by part; the stash they
    wait in is gone once loaded."""
    monkeypatch.setattr(load, "SF_PER_STEP", 0.004)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = dataclasses.replace(ha_stack.coordinator, dbname="exapg_tpch_parts")
    with connect(ha_stack.coordinator) as conn:
        conn.execute("DROP DATABASE IF EXISTS exapg_tpch_parts")
        conn.execute("CREATE DATABASE exapg_tpch_parts")
    try:
        said: list[str] = []
        with connect(target, statement_timeout_ms=0) as conn:
            data = load.load(conn, 0.01, stage=said.append)
            backwards = {table: conn.execute(
                f"SELECT count(*) FROM (SELECT d < lag(d) OVER (ORDER BY ctid) AS back FROM ({dated}) s) b WHERE back"
            ).fetchone()[0] for table, dated in (
                ("orders", "SELECT ctid, o_orderdate AS d FROM tpch.orders"),
                ("lineitem", "SELECT l.ctid, o.o_orderdate AS d FROM tpch.lineitem l "
                             "JOIN tpch.orders o ON o.o_orderkey = l.l_orderkey"))}
            # an order's lines stay together: as many runs of one order key as orders
            runs, orders = conn.execute(
                "SELECT count(*) FILTER (WHERE before IS DISTINCT FROM l_orderkey), count(DISTINCT l_orderkey) "
                "FROM (SELECT l_orderkey, lag(l_orderkey) OVER (ORDER BY ctid) AS before FROM tpch.lineitem) s"
            ).fetchone()
    finally:
        with connect(ha_stack.coordinator) as conn:
            conn.execute("DROP DATABASE exapg_tpch_parts WITH (FORCE)")
    assert "generating TPC-H data at scale factor 0.01 (part 3 of 3) (DuckDB dbgen)" in said
    assert "copying orders and lineitem in date order (3 slices of dates)" in said
    assert data.rows["lineitem"] == LINEITEM_SF001 and data.rows["orders"] == 15_000
    assert backwards == {"orders": 0, "lineitem": 0} and runs == orders == 15_000
    assert list(tmp_path.iterdir()) == []


def test_the_plain_layout_is_there_for_comparison(ha_stack, loaded):
    result = ha_stack.cli("sample", "tpch", "--sf", "0.01", "--layout", "plain", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layout"] == "plain"
    with connect(ha_stack.coordinator) as conn:
        brin = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'tpch' "
                            "AND indexdef LIKE '%USING brin%'").fetchone()[0]
        vacuumed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'tpch' "
                                "AND last_vacuum IS NOT NULL").fetchone()[0]
    assert brin == 0 and vacuumed == 8
    bad = ha_stack.cli("sample", "tpch", "--sf", "0.01", "--layout", "sorted")
    assert bad.returncode == 2 and "layout" in bad.stderr
    again = ha_stack.cli("sample", "tpch", "--sf", "0.01", "--json", timeout=300)  # as the other tests expect
    assert again.returncode == 0 and json.loads(again.stdout)["layout"] == "exapg", again.stderr


def test_bench_checks_all_22_answers(ha_stack, loaded):
    result = ha_stack.cli("bench", "tpch", "--repeat", "1", "--json", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    assert report["checked"] and report["passed"]
    assert [(r["query"], r["status"]) for r in report["results"]] == [(n, "ok") for n in range(1, 23)]
    assert report["geometric_mean"] > 0
    assert report["settings"]["jit"] and report["machine"]["cpus"] >= 1
    assert Path(report["result_file"]).is_file()
    assert "<svg" in Path(report["chart_file"]).read_text()
    latest = Path(report["result_file"]).with_name("tpch-latest.json")
    assert json.loads(latest.read_text())["results"] == report["results"]


def test_the_management_api_serves_the_last_run(api_server, admin):
    with api_server.client() as anonymous:
        assert anonymous.get("/api/bench/tpch/latest").status_code == 401
    answer = admin.get("/api/bench/tpch/latest")
    assert answer.status_code == 200, answer.text
    run = answer.json()
    latest = api_server.stack.settings.state_dir / "results" / "tpch-latest.json"
    assert run == json.loads(latest.read_text())
    assert run["scale_factor"] == 0.01 and len(run["results"]) == 22


def test_the_benchmarks_page_shows_the_last_run(page, api_server):
    log_in(page, api_server.url, "admin", api_server.admin_password)
    page.click("text=Benchmarks")
    page.wait_for_selector("[data-testid=bench-queries]")
    assert "all correct" in page.text_content("[data-testid=bench-passed]")
    assert page.locator("[data-testid=bench-queries] tbody tr").count() == 22
    assert " ms" in page.text_content("[data-testid=bench-gm]")
    shot(page, "benchmarks")


def test_a_wrong_answer_is_a_failure_not_a_time(ha_stack, loaded):
    with connect(ha_stack.coordinator) as conn:
        conn.execute("UPDATE tpch.lineitem SET l_quantity = l_quantity + 1 WHERE l_orderkey = 1")
    try:
        result = ha_stack.cli("bench", "tpch", "--queries", "1,6", "--repeat", "1", "--json", timeout=300)
    finally:
        with connect(ha_stack.coordinator) as conn:
            conn.execute("UPDATE tpch.lineitem SET l_quantity = l_quantity - 1 WHERE l_orderkey = 1")
    assert result.returncode == 1
    statuses = {r["query"]: r for r in json.loads(result.stdout)["results"]}
    assert statuses[1]["status"] == "wrong" and "sum_qty" in statuses[1]["detail"]
    assert statuses[1]["median"] is None
    assert "Q1 wrong" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["sample", "tpch", "--sf", "-1"], "invalid scale factor"),
    (["sample", "tpch", "--sf", "0"], "invalid scale factor"),
    (["sample", "tpch", "--sf", "100000"], "invalid scale factor"),
    (["bench", "tpch", "--queries", "1,23"], "unknown TPC-H query '23'"),
    (["bench", "tpch", "--queries", "x"], "unknown TPC-H query 'x'"),
    (["bench", "tpch", "--repeat", "0"], "invalid --repeat"),
    (["bench", "tpch", "--sf", "0.1"], "scale factor 0.01, not 0.1"),
    (["bench", "pgbench", "--clients", "0"], "invalid --clients"),
])
def test_bad_arguments_give_one_line_and_exit_2(ha_stack, loaded, args, message):
    result = ha_stack.cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_stack_running_is_a_clear_error():
    env = stack_environment(new_state_dir())
    for args in (["sample", "tpch", "--sf", "0.01"], ["bench", "tpch"], ["bench", "pgbench"]):
        result = run_cli(*args, env=env)
        assert result.returncode == 1, result.stderr
        assert "exapg up" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_stopped_stack_is_a_clear_error(make_stack):
    stack = make_stack("standalone")
    assert stack.cli("stop").returncode == 0
    for args in (["sample", "tpch", "--sf", "0.01"], ["bench", "tpch"], ["bench", "pgbench"]):
        result = stack.cli(*args)
        assert result.returncode == 1, result.stderr
        assert "is not running: start it with 'exapg up'" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_interrupted_load_leaves_nothing_trusted(ha_stack, loaded, tmp_path):
    """Killed in the middle of COPY: the previous complete load is still what is used, and
    DuckDB's spool files (nameless) leave nothing in the temporary directory."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    process = subprocess.Popen([*EXAPG, "sample", "tpch", "--sf", "0.1"],
                               env={**cli_environment(ha_stack.env), "TMPDIR": str(spool)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with connect(ha_stack.coordinator) as conn:
            deadline = time.monotonic() + 120
            # the tables are made in the loading transactions: not visible here, so watch the
            # progress of any COPY well into its rows
            while not conn.execute("SELECT count(*) FROM pg_stat_progress_copy WHERE command = 'COPY FROM' "
                                   "AND tuples_processed > 50000").fetchone()[0]:
                assert process.poll() is None and time.monotonic() < deadline, "the load never reached lineitem"
                time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        process.kill()
    assert list(spool.iterdir()) == []
    with connect(ha_stack.coordinator) as conn:
        assert conn.execute("SELECT scale_factor FROM tpch.exapg_tpch_load").fetchone()[0] == 0.01
        assert conn.execute("SELECT count(*) FROM tpch.lineitem").fetchone()[0] == LINEITEM_SF001
    bench = ha_stack.cli("bench", "tpch", "--queries", "6", "--repeat", "1")
    assert bench.returncode == 0, bench.stderr
    again = ha_stack.cli("sample", "tpch", "--sf", "0.01", timeout=300)
    assert again.returncode == 0, again.stderr
    with connect(ha_stack.coordinator) as conn:
        assert conn.execute("SELECT to_regnamespace('tpch_load')").fetchone()[0] is None


def test_pgbench_through_pgbouncer_and_direct(ha_stack):
    result = ha_stack.cli("bench", "pgbench", "--clients", "4", "--time", "2", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {r["target"]: r for r in json.loads(result.stdout)}
    assert rows["pgbouncer"]["port"] == ha_stack.settings.pgbouncer_port
    assert rows["direct"]["port"] == ha_stack.settings.coordinator_port
    assert rows["pgbouncer"]["tps"] > 0 and rows["direct"]["tps"] > 0
    assert rows["pgbouncer"]["failed"] == 0 and rows["direct"]["failed"] == 0


def test_a_generator_failing_mid_table_fails_the_copy_with_no_rows_in(ha_stack):
    """DuckDB fails after writing part of a table: the COPY ends in error, not with the rows
    read so far, and the error names the table."""
    # one thread reads the rows in order, and SF 0.1 is large enough for DuckDB to write
    # some before it meets the failing ones
    source = duck.connect(1)
    source.execute("CALL dbgen(sf = 0.1)")
    failing = ("SELECT * REPLACE (CASE WHEN l_orderkey < 500000 THEN l_comment ELSE error('generator broke') END "
               "AS l_comment) FROM lineitem")
    seen: list[int] = []
    with connect(ha_stack.coordinator) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {load.STAGING} CASCADE")
        conn.execute(f"CREATE SCHEMA {load.STAGING}")
        try:
            load.create_table(conn, "lineitem", False)
            with pytest.raises(ExaPGError, match=r"generating table lineitem failed: .*generator broke"):
                load.copy_table(conn, source, "lineitem", 0.1, lambda _t, done, _e: seen.append(done),
                                query=failing, fmt="text")
            assert seen and seen[-1] > 0  # rows went into the COPY before the failure
            assert conn.execute(f"SELECT count(*) FROM {load.STAGING}.lineitem").fetchone()[0] == 0
        finally:
            conn.execute(f"DROP SCHEMA {load.STAGING} CASCADE")
            source.close()

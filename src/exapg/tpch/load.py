"""Load TPC-H into PostgreSQL: DuckDB generates it, COPY streams it in.

Each table leaves DuckDB as CSV through a named pipe (no data file on disk) and goes
into PostgreSQL with `COPY ... FROM STDIN`. Everything is built in the schema
`tpch_load`; only when every table, key, index and statistic is in place is the old
`tpch` schema dropped and `tpch_load` renamed to `tpch`, in one transaction, with the
marker table `tpch.exapg_tpch_load` written last. An interrupted load therefore leaves
only a `tpch_load` schema that nothing trusts and the next load drops.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from exapg.errors import ExaPGError, InvalidParameterError
from exapg.tpch import duck
from exapg.tpch.schema import CITUS_INDEXES, CITUS_PLACEMENT, EXAPG, FACT_TABLES, LAYOUTS, PRIMARY_KEYS, TABLES, Layout

SCHEMA = "tpch"
STAGING = "tpch_load"
MARKER = "exapg_tpch_load"
CHUNK = 1 << 20
SF_PER_STEP = 1.0  # the DuckDB memory of one part: that of SF 1
MAX_SCALE = 1000.0

# Rows per table at scale factor 1 (region and nation do not scale).
ROWS_SF1 = {"region": 5, "nation": 25, "supplier": 10_000, "customer": 150_000, "part": 200_000,
            "partsupp": 800_000, "orders": 1_500_000, "lineitem": 6_001_215}

Progress = Callable[[str, int, int], None]  # table, rows done, rows expected


@dataclass(frozen=True)
class LoadedData:
    scale_factor: float
    rows: dict[str, int]
    columnar: bool
    distributed: bool
    loaded_at: float
    seconds: dict[str, float] = field(default_factory=dict)
    layout: str = "plain"  # loads made before layouts were recorded were plain


def check_scale(scale_factor: float) -> float:
    if not 0 < scale_factor <= MAX_SCALE:
        raise InvalidParameterError(
            f"invalid scale factor {scale_factor:g}: use a number above 0 and at most {MAX_SCALE:g} "
            "(1 is about 1 GB of data; answers are checked at 0.01, 0.1 and 1)"
        )
    return scale_factor


def layout_named(name: str) -> Layout:
    if name not in LAYOUTS:
        raise InvalidParameterError(f"invalid --layout {name!r}: use {' or '.join(LAYOUTS)}")
    return LAYOUTS[name]


def expected_rows(table: str, scale_factor: float) -> int:
    if table in ("region", "nation"):
        return ROWS_SF1[table]
    return max(1, int(ROWS_SF1[table] * scale_factor))


def has_citus(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone() is not None


def has_workers(conn: psycopg.Connection) -> bool:
    """Citus workers to distribute over (a coordinator with Citus but no worker, as a Docker
    coordinator started alone, cannot hold a distributed table)."""
    row = conn.execute("SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0").fetchone()
    return bool(row and row[0])


def loaded(conn: psycopg.Connection) -> LoadedData | None:
    """What the last complete load recorded, or None (no data, or a half-made load)."""
    if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{MARKER}",)).fetchone()[0] is None:  # type: ignore[index]
        return None
    # as jsonb, so a marker written before a column existed still reads
    row = conn.execute(
        sql.SQL("SELECT to_jsonb(m), extract(epoch FROM m.loaded_at)::float8 FROM {}.{} m").format(
            sql.Identifier(SCHEMA), sql.Identifier(MARKER))
    ).fetchone()
    if row is None:
        return None
    marker: dict[str, Any] = row[0]
    return LoadedData(float(marker["scale_factor"]), dict(marker["rows"]), bool(marker["columnar"]),
                      bool(marker["distributed"]), float(row[1]), dict(marker["seconds"]),
                      str(marker.get("layout", "plain")))


def load(
    conn: psycopg.Connection,
    scale_factor: float,
    *,
    columnar: bool = False,
    layout: Layout = EXAPG,
    progress: Progress | None = None,
    stage: Callable[[str], None] | None = None,
) -> LoadedData:
    """Generate and load TPC-H at `scale_factor` into schema `tpch` of `conn`'s database,
    laid out as `layout` says (schema.Layout)."""
    check_scale(scale_factor)
    say = stage or (lambda _text: None)
    columnar_store = has_citus(conn)
    citus = columnar_store and has_workers(conn)
    if columnar and not columnar_store:
        raise ExaPGError("--columnar needs Citus columnar storage, which this database does not have "
                         "(use --mode cluster, or load without --columnar)")
    ident = sql.Identifier
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(STAGING)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(STAGING)))
    # COPY FREEZE needs the table made in the COPY's own transaction: not for a table Citus
    # distributes (made and distributed first, on this session) nor for a columnar one.
    frozen = {t for t in TABLES if layout.freeze and not citus and not (columnar and t in FACT_TABLES)}
    for table in TABLES:
        if table not in frozen:
            create_table(conn, table, columnar)
    if citus:
        say("distributing the tables (Citus)")
        distribute(conn)

    sessions = [conn] + [reopen(conn) for _ in range(load_sessions(layout) - 1)]
    for session in sessions:
        for_loading(session)
    seconds: dict[str, float] = dict.fromkeys(TABLES, 0.0)
    rows: dict[str, int] = dict.fromkeys(TABLES, 0)
    shares = share_out(list(TABLES), len(sessions))
    try:
        # each session makes its frozen tables in the transaction that copies them
        for session, tables in zip(sessions, shares, strict=True):
            if frozen & set(tables):
                session.execute("BEGIN")
                for table in frozen & set(tables):
                    create_table(session, table, columnar)
        copy_all(sessions, shares, scale_factor, layout, frozen, rows, seconds, progress, say)
        for session in sessions:
            if session.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                session.execute("COMMIT")

        say("building keys and indexes")
        started = time.perf_counter()
        build_indexes(sessions, layout, citus, columnar)
        seconds["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        if layout.freeze and not citus:
            # the rows are frozen and the pages all-visible already: statistics are all that is left
            say("collecting statistics (ANALYZE)")
            in_parallel(sessions, [sql.SQL("ANALYZE {}.{}").format(ident(STAGING), ident(t)) for t in TABLES])
        else:
            # VACUUM as well as ANALYZE: freshly copied rows have no hint bits and no visibility
            # map, so the first queries would pay for setting them (writing pages while reading)
            # and autovacuum would soon scan every table anyway, in the middle of the workload.
            say("vacuuming and collecting statistics (VACUUM ANALYZE)")
            for table in TABLES:
                conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}.{}").format(ident(STAGING), ident(table)))
        seconds["analyze"] = time.perf_counter() - started
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")  # the other sessions roll back as they close
        raise
    finally:
        for session in sessions[1:]:
            session.close()
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("RESET max_parallel_maintenance_workers")
    data = publish(conn, scale_factor, rows, columnar, citus, layout.name, seconds)
    say("writing the loaded data out (CHECKPOINT)")
    checkpoint(conn)
    return data


def copy_rate(data: LoadedData) -> float:
    """Rows per second by COPY of a load just made: all rows over the copy phase's wall time."""
    return sum(data.rows.values()) / data.seconds["copy"]


def load_sessions(layout: Layout) -> int:
    return max(1, min(layout.sessions, os.cpu_count() or 1, len(TABLES)))


def reopen(conn: psycopg.Connection) -> psycopg.Connection:
    """Another session as the same user on the same database, with the same options."""
    return psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True)


def for_loading(session: psycopg.Connection) -> None:
    """Settings of a loading session only: an index build may use every parallel worker
    the server has (the server's own default leaves half of them to queries)."""
    session.execute("SELECT set_config('max_parallel_maintenance_workers', current_setting('max_parallel_workers'), "
                    "false)")


def share_out(tables: list[str], sessions: int) -> list[list[str]]:
    """Tables per session, largest first to the least loaded session (by rows at SF 1)."""
    shares: list[list[str]] = [[] for _ in range(sessions)]
    weight = [0] * sessions
    for table in sorted(tables, key=lambda t: -ROWS_SF1[t]):
        least = weight.index(min(weight))
        shares[least].append(table)
        weight[least] += ROWS_SF1[table]
    return shares


def create_table(conn: psycopg.Connection, table: str, columnar: bool) -> None:
    using = sql.SQL(" USING columnar") if columnar and table in FACT_TABLES else sql.SQL("")
    conn.execute(sql.SQL("CREATE TABLE {}.{} (" + TABLES[table] + "){}").format(
        sql.Identifier(STAGING), sql.Identifier(table), using))


def copy_all(sessions: list[psycopg.Connection], shares: list[list[str]], scale_factor: float,
             layout: Layout, frozen: set[str], rows: dict[str, int], seconds: dict[str, float],
             progress: Progress | None, say: Callable[[str], None]) -> None:
    """Generate the data (in parts above SF 1) and copy each part's tables, each session its share.
    `seconds` gets each table's copy time (per session, so they overlap), and the wall time
    of generating ("generate") and of copying ("copy"): all sessions together."""
    steps = generation_steps(scale_factor)
    source = duck.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="exapg-tpch-") as pipes:
            for step in range(steps):
                part = f" (part {step + 1} of {steps})" if steps > 1 else ""
                say(f"generating TPC-H data at scale factor {scale_factor:g}{part} (DuckDB dbgen)")
                started = time.perf_counter()
                generate(source, scale_factor, steps, step)
                seconds["generate"] = seconds.get("generate", 0.0) + time.perf_counter() - started

                def copy_share(session: psycopg.Connection, tables: list[str]) -> None:
                    for table in tables:
                        started = time.perf_counter()
                        rows[table] += copy_table(session, source, table, Path(pipes), scale_factor, progress,
                                                  rows[table], query=layout.order.get(table),
                                                  freeze=table in frozen)
                        seconds[table] += time.perf_counter() - started

                started = time.perf_counter()
                run_together([functools.partial(copy_share, s, t) for s, t in zip(sessions, shares, strict=True)])
                seconds["copy"] = seconds.get("copy", 0.0) + time.perf_counter() - started
                for table in TABLES:
                    source.execute(f"DROP TABLE {table}")  # our own constant names; frees the part
    finally:
        source.close()


def build_indexes(sessions: list[psycopg.Connection], layout: Layout, citus: bool, columnar: bool) -> None:
    """Primary keys (as unique indexes, attached at the end) and the layout's indexes, the
    largest first, spread over the sessions, each with the columns the layout has it carry.
    Citus makes keys of distributed tables itself, one statement at a time, without them.
    Columnar tables take no BRIN index (only B-tree and hash): their stripes keep each
    column's minimum and maximum, which skips blocks the same way."""
    ident = sql.Identifier
    indexes = [(t, c, m) for t, c, m in layout.indexes()
               if not (m == "brin" and columnar and t in FACT_TABLES)]
    if citus:  # built after the data, as every other index
        indexes += [(t, c, "btree") for t, all_cols in CITUS_INDEXES.items() for c in all_cols]
    if citus:
        for table, key_columns in PRIMARY_KEYS.items():
            sessions[0].execute(sql.SQL("ALTER TABLE {}.{} ADD PRIMARY KEY ({})").format(
                ident(STAGING), ident(table), sql.SQL(", ").join(map(ident, key_columns))))
        for table, columns, method in indexes:
            sessions[0].execute(index_statement(table, columns, method))
        return
    statements: list[tuple[int, sql.Composed]] = []
    for table, key_columns in PRIMARY_KEYS.items():
        statements.append((ROWS_SF1[table], sql.SQL("CREATE UNIQUE INDEX {} ON {}.{} ({}){}").format(
            ident(f"{table}_pkey"), ident(STAGING), ident(table), sql.SQL(", ").join(map(ident, key_columns)),
            carried(layout, table, key_columns))))
    for table, columns, method in indexes:
        statements.append((ROWS_SF1[table] // (10 if method == "brin" else 1),
                           index_statement(table, columns, method, carried(layout, table, columns))))
    statements.sort(key=lambda pair: -pair[0])
    in_parallel(sessions, [statement for _, statement in statements])
    for table in PRIMARY_KEYS:
        sessions[0].execute(sql.SQL("ALTER TABLE {}.{} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
            ident(STAGING), ident(table), ident(f"{table}_pkey"), ident(f"{table}_pkey")))


def index_statement(table: str, columns: tuple[str, ...], method: str,
                    include: sql.Composable = sql.SQL("")) -> sql.Composed:
    return sql.SQL("CREATE INDEX ON {}.{} USING {} ({}){}").format(
        sql.Identifier(STAGING), sql.Identifier(table), sql.SQL(method),
        sql.SQL(", ").join(map(sql.Identifier, columns)), include)


def carried(layout: Layout, table: str, columns: tuple[str, ...]) -> sql.Composable:
    """The INCLUDE clause of the index on `columns` of `table`, if the layout gives it one."""
    extra = layout.include.get((table, columns))
    return sql.SQL(" INCLUDE ({})").format(sql.SQL(", ").join(map(sql.Identifier, extra))) if extra else sql.SQL("")


def in_parallel(sessions: list[psycopg.Connection], statements: list[sql.Composed]) -> None:
    """Run the statements in order, each on the next free session."""
    queue = list(reversed(statements))
    lock = threading.Lock()

    def worker(session: psycopg.Connection) -> None:
        while True:
            with lock:
                if not queue:
                    return
                statement = queue.pop()
            session.execute(statement)

    run_together([functools.partial(worker, s) for s in sessions])


def run_together(jobs: list[Callable[[], None]]) -> None:
    """Run the jobs in threads (one runs in this thread); raise the first failure once all ended."""
    failures: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,), daemon=True) for job in jobs[1:]]
    for thread in threads:
        thread.start()
    guarded(jobs[0])
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def checkpoint(conn: psycopg.Connection) -> None:
    """Write the load's dirty buffers now: otherwise the checkpointer spreads gigabytes of
    writes over the next minutes (checkpoint_completion_target), under the first queries."""
    # neither superuser nor pg_checkpoint: the checkpointer will get there on its own
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def distribute(conn: psycopg.Connection) -> None:
    for table, placement in CITUS_PLACEMENT.items():
        name = f"{STAGING}.{table}"
        if placement.column is None:
            conn.execute("SELECT create_reference_table(%s)", (name,))
        else:
            colocate = f"{STAGING}.{placement.colocate_with}" if placement.colocate_with else "default"
            conn.execute("SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                         (name, placement.column, colocate))


def generation_steps(scale_factor: float) -> int:
    """dbgen holds what it generates in memory: above SF_PER_STEP it makes the data in parts
    (dbgen's children/step: the same rows, region and nation in the first part only)."""
    return max(1, math.ceil(scale_factor / SF_PER_STEP - 1e-9))


def generate(source: Any, scale_factor: float, steps: int, step: int) -> None:
    if steps == 1:
        source.execute("CALL dbgen(sf = ?)", [scale_factor])
    else:
        source.execute("CALL dbgen(sf = ?, children = ?, step = ?)", [scale_factor, steps, step])


def copy_table(conn: psycopg.Connection, source: Any, table: str, pipes: Path, scale_factor: float,
               progress: Progress | None, before: int = 0, *, query: str | None = None,
               freeze: bool = False) -> int:
    """Stream one table from DuckDB to PostgreSQL through a named pipe; returns its rows
    (`before`: rows of earlier parts, for the progress bar). `query`: DuckDB's query giving
    the rows in the order to write them (otherwise the table as generated); `freeze`: COPY
    FREEZE (the table was made in this transaction)."""
    fifo = pipes / f"{table}.csv"
    os.mkfifo(fifo, 0o600)
    failure: list[BaseException] = []
    cursor = source.cursor()

    def produce() -> None:
        try:
            rows = f"({query})" if query else table  # our own constant names and queries
            cursor.execute(f"COPY {rows} TO '{fifo}' (FORMAT csv, HEADER false)")
        except BaseException as exc:
            failure.append(exc)
            with open(fifo, "wb", buffering=0):  # unblock a reader still waiting to open
                pass

    writer = threading.Thread(target=produce, name=f"tpch-{table}", daemon=True)
    writer.start()
    expected = expected_rows(table, scale_factor)
    done = 0
    target = sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv{})").format(
        sql.Identifier(STAGING), sql.Identifier(table), sql.SQL(", FREEZE" if freeze else ""))
    try:
        with open(fifo, "rb") as stream, conn.cursor() as cur, cur.copy(target) as copy:
            while chunk := stream.read(CHUNK):
                copy.write(chunk)
                done += chunk.count(b"\n")
                if progress:
                    progress(table, before + done, expected)
    finally:
        writer.join(timeout=30)
        cursor.close()
        fifo.unlink(missing_ok=True)
    if failure:
        raise ExaPGError(f"generating table {table} failed: {str(failure[0]).splitlines()[0]}")
    return done


def publish(conn: psycopg.Connection, scale_factor: float, rows: dict[str, int], columnar: bool,
            distributed: bool, layout: str, seconds: dict[str, float]) -> LoadedData:
    """Write the marker, then swap the staging schema in, in one transaction."""
    ident = sql.Identifier
    with conn.transaction():
        conn.execute(sql.SQL(
            "CREATE TABLE {}.{} (scale_factor float8 NOT NULL, rows jsonb NOT NULL, columnar boolean NOT NULL, "
            "distributed boolean NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), seconds jsonb NOT NULL, "
            "layout text NOT NULL)"
        ).format(ident(STAGING), ident(MARKER)))
        conn.execute(
            sql.SQL("INSERT INTO {}.{} (scale_factor, rows, columnar, distributed, seconds, layout) "
                    "VALUES (%s, %s, %s, %s, %s, %s)").format(ident(STAGING), ident(MARKER)),
            (scale_factor, json.dumps(rows), columnar, distributed, json.dumps(seconds), layout),
        )
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(SCHEMA)))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(STAGING), ident(SCHEMA)))
    data = loaded(conn)
    assert data is not None
    return data

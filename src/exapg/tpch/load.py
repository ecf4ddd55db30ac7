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
from exapg.tpch.schema import CITUS_INDEXES, CITUS_PLACEMENT, FACT_TABLES, INDEXES, PRIMARY_KEYS, TABLES

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


def check_scale(scale_factor: float) -> float:
    if not 0 < scale_factor <= MAX_SCALE:
        raise InvalidParameterError(
            f"invalid scale factor {scale_factor:g}: use a number above 0 and at most {MAX_SCALE:g} "
            "(1 is about 1 GB of data; answers are checked at 0.01, 0.1 and 1)"
        )
    return scale_factor


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
    row = conn.execute(
        sql.SQL("SELECT scale_factor, rows, columnar, distributed, extract(epoch FROM loaded_at)::float8, "
                "seconds FROM {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(MARKER))
    ).fetchone()
    if row is None:
        return None
    return LoadedData(float(row[0]), dict(row[1]), bool(row[2]), bool(row[3]), float(row[4]), dict(row[5]))


def load(
    conn: psycopg.Connection,
    scale_factor: float,
    *,
    columnar: bool = False,
    progress: Progress | None = None,
    stage: Callable[[str], None] | None = None,
) -> LoadedData:
    """Generate and load TPC-H at `scale_factor` into schema `tpch` of `conn`'s database."""
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
    for table, columns in TABLES.items():
        using = sql.SQL(" USING columnar") if columnar and table in FACT_TABLES else sql.SQL("")
        conn.execute(sql.SQL("CREATE TABLE {}.{} (" + columns + "){}").format(ident(STAGING), ident(table), using))
    if citus:
        say("distributing the tables (Citus)")
        distribute(conn)

    steps = generation_steps(scale_factor)
    source = duck.connect()
    seconds: dict[str, float] = dict.fromkeys(TABLES, 0.0)
    rows: dict[str, int] = dict.fromkeys(TABLES, 0)
    try:
        with tempfile.TemporaryDirectory(prefix="exapg-tpch-") as pipes:
            for step in range(steps):
                part = f" (part {step + 1} of {steps})" if steps > 1 else ""
                say(f"generating TPC-H data at scale factor {scale_factor:g}{part} (DuckDB dbgen)")
                generate(source, scale_factor, steps, step)
                for table in TABLES:
                    started = time.perf_counter()
                    rows[table] += copy_table(conn, source, table, Path(pipes), scale_factor, progress, rows[table])
                    seconds[table] += time.perf_counter() - started
                    source.execute(f"DROP TABLE {table}")  # our own constant names; frees the part
    finally:
        source.close()

    say("building keys and indexes")
    started = time.perf_counter()
    for table, key_columns in PRIMARY_KEYS.items():
        conn.execute(sql.SQL("ALTER TABLE {}.{} ADD PRIMARY KEY ({})").format(
            ident(STAGING), ident(table), sql.SQL(", ").join(map(ident, key_columns))))
    for table, indexes in INDEXES.items():
        for index_columns in indexes:
            conn.execute(sql.SQL("CREATE INDEX ON {}.{} ({})").format(
                ident(STAGING), ident(table), sql.SQL(", ").join(map(ident, index_columns))))
    seconds["indexes"] = time.perf_counter() - started
    # VACUUM as well as ANALYZE: freshly copied rows have no hint bits and no visibility
    # map, so the first queries would pay for setting them (writing pages while reading)
    # and autovacuum would soon scan every table anyway, in the middle of the workload.
    say("vacuuming and collecting statistics (VACUUM ANALYZE)")
    started = time.perf_counter()
    for table in TABLES:
        conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}.{}").format(ident(STAGING), ident(table)))
    seconds["analyze"] = time.perf_counter() - started
    data = publish(conn, scale_factor, rows, columnar, citus, seconds)
    say("writing the loaded data out (CHECKPOINT)")
    checkpoint(conn)
    return data


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
    for table, indexes in CITUS_INDEXES.items():
        for index_columns in indexes:
            conn.execute(sql.SQL("CREATE INDEX ON {}.{} ({})").format(
                sql.Identifier(STAGING), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, index_columns))))


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
               progress: Progress | None, before: int = 0) -> int:
    """Stream one table from DuckDB to PostgreSQL through a named pipe; returns its rows
    (`before`: rows of earlier parts, for the progress bar)."""
    fifo = pipes / f"{table}.csv"
    os.mkfifo(fifo, 0o600)
    failure: list[BaseException] = []
    cursor = source.cursor()

    def produce() -> None:
        try:
            cursor.execute(f"COPY {table} TO '{fifo}' (FORMAT csv, HEADER false)")
        except BaseException as exc:
            failure.append(exc)
            with open(fifo, "wb", buffering=0):  # unblock a reader still waiting to open
                pass

    writer = threading.Thread(target=produce, name=f"tpch-{table}", daemon=True)
    writer.start()
    expected = expected_rows(table, scale_factor)
    done = 0
    target = sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv)").format(sql.Identifier(STAGING), sql.Identifier(table))
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
            distributed: bool, seconds: dict[str, float]) -> LoadedData:
    """Write the marker, then swap the staging schema in, in one transaction."""
    ident = sql.Identifier
    with conn.transaction():
        conn.execute(sql.SQL(
            "CREATE TABLE {}.{} (scale_factor float8 NOT NULL, rows jsonb NOT NULL, columnar boolean NOT NULL, "
            "distributed boolean NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), seconds jsonb NOT NULL)"
        ).format(ident(STAGING), ident(MARKER)))
        conn.execute(
            sql.SQL("INSERT INTO {}.{} (scale_factor, rows, columnar, distributed, seconds) "
                    "VALUES (%s, %s, %s, %s, %s)").format(ident(STAGING), ident(MARKER)),
            (scale_factor, json.dumps(rows), columnar, distributed, json.dumps(seconds)),
        )
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(SCHEMA)))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(STAGING), ident(SCHEMA)))
    data = loaded(conn)
    assert data is not None
    return data

"""Load TPC-H into PostgreSQL: DuckDB generates it, COPY streams it in.

Each table leaves DuckDB as CSV (or in PostgreSQL's text format) into a spool file, which
`COPY ... FROM STDIN` streams into PostgreSQL while DuckDB still writes it. Everything
is built in the schema `tpch_load`; only when every table, key, index and statistic is
in place is the old `tpch` schema dropped and `tpch_load` renamed to `tpch`, in one
transaction, with the marker table `tpch.exapg_tpch_load` written last. An interrupted
load therefore leaves only a `tpch_load` schema that nothing trusts and the next load drops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from exapg.errors import ExaPGError, InvalidParameterError
from exapg.proc import pid_alive
from exapg.tpch import duck
from exapg.tpch.schema import (
    CITUS_INDEXES,
    CITUS_PLACEMENT,
    EXAPG,
    FACT_TABLES,
    LAYOUTS,
    PRIMARY_KEYS,
    TABLES,
    DateOrder,
    Layout,
)

SCHEMA = "tpch"
STAGING = "tpch_load"
MARKER = "exapg_tpch_load"
CHUNK = 1 << 20
SF_PER_STEP = 1.0  # the DuckDB memory of one part: that of SF 1
MAX_SCALE = 1000.0
STASH_PREFIX = "exapg-tpch-stash-"
STASH_MEMORY = "4GB"  # DuckDB's memory above SF 1, where the stash is a file

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
        if citus:
            copy_all(sessions, shares, scale_factor, layout, frozen, rows, seconds, progress, say, None)
            build_citus(conn, layout, columnar, seconds, say)
        else:
            builds = Builds(build_jobs(layout, columnar), TABLES, say)
            copy_all(sessions, shares, scale_factor, layout, frozen, rows, seconds, progress, say, builds)
            seconds.update(builds.phases())
            for table in PRIMARY_KEYS:
                conn.execute(sql.SQL("ALTER TABLE {}.{} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
                    ident(STAGING), ident(table), ident(f"{table}_pkey"), ident(f"{table}_pkey")))
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
    parallel_builds(session, True)


def parallel_builds(session: psycopg.Connection, parallel: bool) -> None:
    """Index builds on `session` with as many parallel workers as the server has, or none."""
    session.execute("SELECT set_config('max_parallel_maintenance_workers', "
                    "CASE WHEN %s THEN current_setting('max_parallel_workers') ELSE '0' END, false)", (parallel,))


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
             progress: Progress | None, say: Callable[[str], None], builds: Builds | None) -> None:
    """Generate the data (in parts above SF 1) and copy it, each session its share of the
    tables, in rounds: one per part, then, above SF 1, one for the tables in date order,
    which wait in a stash until every part is made (their order holds across the whole
    table, not part by part). In the last round, once a session's share is in, it commits
    and, given `builds`, goes on to build keys and indexes of what is copied. `seconds` gets
    each table's copy time (per session, so they overlap), and the wall time of generating
    ("generate") and of copying ("copy", until the last table is in): all sessions together."""
    steps = generation_steps(scale_factor)
    stashed = dict(layout.order) if steps > 1 else {}
    remove_stale_stashes(Path(tempfile.gettempdir()))
    with contextlib.ExitStack() as stack:
        # a killed load leaves its folder behind: the next load removes it (remove_stale_stashes)
        folder = (stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{STASH_PREFIX}{os.getpid()}-"))
                  if stashed else None)
        source = duck.connect()
        stack.callback(source.close)  # before the stash's folder goes
        source.execute(f"SET threads = {os.cpu_count() or 1}")
        if folder:
            source.execute(f"SET temp_directory = '{folder}'")  # a path tempfile made
            # the stash would otherwise stay cached up to DuckDB's default, 80% of the memory:
            # a part in memory and the sort of a slice take about 3.5 GB at SF 1 each
            source.execute(f"SET memory_limit = '{STASH_MEMORY}'")
            source.execute(f"ATTACH '{folder}/stash.duckdb' AS stash")

        def copy_round(queries: Mapping[str, Sequence[str | None]], last: bool,
                       also: Sequence[Callable[[], None]]) -> None:
            """Copy `queries`' rows into their tables (None: the table as generated), each
            session its share, while `also` runs."""
            ended: list[float] = []

            def copy_share(session: psycopg.Connection, tables: list[str]) -> None:
                try:
                    for table in tables:
                        started = time.perf_counter()
                        for query in queries.get(table, ()):
                            rows[table] += copy_table(session, source, table, scale_factor, progress, rows[table],
                                                      query=query, freeze=table in frozen, fmt=layout.copy_format)
                        seconds[table] += time.perf_counter() - started
                    if last and session.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        session.execute("COMMIT")
                    ended.append(time.perf_counter())
                except BaseException:
                    if builds:
                        builds.fail()  # the other sessions stop waiting for these tables
                    raise
                if last and builds:
                    builds.copied(tables)
                    builds.work(session)

            def timed(job: Callable[[], None]) -> None:
                job()
                ended.append(time.perf_counter())

            started = time.perf_counter()
            run_together([functools.partial(copy_share, s, t) for s, t in zip(sessions, shares, strict=True)]
                         + [functools.partial(timed, job) for job in also])
            seconds["copy"] = seconds.get("copy", 0.0) + max(ended) - started

        for step in range(steps):
            part = f" (part {step + 1} of {steps})" if steps > 1 else ""
            say(f"generating TPC-H data at scale factor {scale_factor:g}{part} (DuckDB dbgen)")
            started = time.perf_counter()
            generate(source, scale_factor, steps, step)
            seconds["generate"] = seconds.get("generate", 0.0) + time.perf_counter() - started
            queries = {t: [ordered(layout.order[t]) if t in layout.order else None] for t in TABLES if t not in stashed}
            also = [functools.partial(stash, source, stashed, step == 0)] if stashed else []
            copy_round(queries, step == steps - 1 and not stashed, also)
            for table in TABLES:
                source.execute(f"DROP TABLE {table}")  # our own constant names; frees the part
        if stashed:
            say(f"copying {' and '.join(stashed)} in date order ({steps} slices of dates)")
            copy_round({t: date_slices(source, t, order, steps) for t, order in stashed.items()}, True, [])


def ordered(order: DateOrder, table: str | None = None, since: dt.date | None = None,
            until: dt.date | None = None) -> str:
    """DuckDB's query giving a table's rows in `order`: those just generated, or those of
    `table` in the stash dated from `since` to before `until`."""
    if table is None:
        return f"SELECT * EXCLUDE (exapg_date) FROM ({order.dated}) ORDER BY exapg_date, {order.then}"
    # our own constant names; the dates are date objects, written as ISO dates
    return (f"SELECT * EXCLUDE (exapg_date) FROM stash.{table} WHERE exapg_date >= DATE '{since}' "
            f"AND exapg_date < DATE '{until}' ORDER BY exapg_date, {order.then}")


def stash(source: Any, tables: dict[str, DateOrder], first: bool) -> None:
    """Keep the part just generated of `tables` in the stash (a DuckDB database file), each
    part sorted by date: a slice of dates then reads only the blocks that hold those dates."""
    cursor = source.cursor()
    try:
        for table, order in tables.items():
            rows = f"SELECT * FROM ({order.dated}) ORDER BY exapg_date"  # our own constant names
            cursor.execute(f"CREATE TABLE stash.{table} AS {rows}" if first else f"INSERT INTO stash.{table} {rows}")
    finally:
        cursor.close()


def date_slices(source: Any, table: str, order: DateOrder, slices: int) -> list[str]:
    """Queries giving the stashed rows of `table` in `order`, in `slices` consecutive ranges
    of dates of equal length (TPC-H spreads its dates evenly: about one part's rows each)."""
    first, last = source.execute(f"SELECT min(exapg_date), max(exapg_date) FROM stash.{table}").fetchone()
    days = (last - first).days + 1
    bounds = [first + dt.timedelta(days=days * i // slices) for i in range(slices + 1)]
    return [ordered(order, table, since, until) for since, until in itertools.pairwise(bounds) if since < until]


def remove_stale_stashes(root: Path) -> list[Path]:
    """Remove the stash folders in `root` whose load's process no longer runs; return them."""
    stale = []
    for path in root.glob(f"{STASH_PREFIX}*-*"):
        pid = path.name.removeprefix(STASH_PREFIX).split("-")[0]
        if pid.isdigit() and path.is_dir() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


@dataclass(frozen=True)
class Build:
    """A statement that builds part of a copied table: a key or an index, or its statistics."""

    table: str
    weight: int  # the larger, the earlier (rows at SF 1)
    statement: sql.Composed
    statistics: bool = False


def build_jobs(layout: Layout, columnar: bool) -> list[Build]:
    """Primary keys (as unique indexes, attached once all is built) and the layout's indexes,
    each with the columns the layout has it carry; then each table's statistics: ANALYZE
    alone after COPY FREEZE (rows frozen, pages all-visible), otherwise VACUUM (FREEZE,
    ANALYZE): freshly copied rows have no hint bits and no visibility map, so the first
    queries would pay for setting them (writing pages while reading), and autovacuum would
    soon scan every table anyway, in the middle of the workload. Columnar tables take no
    BRIN index (only B-tree and hash): their stripes keep each column's minimum and
    maximum, which skips blocks the same way."""
    ident = sql.Identifier
    jobs: list[Build] = [Build(table, ROWS_SF1[table], sql.SQL("CREATE UNIQUE INDEX {} ON {}.{} ({}){}").format(
                ident(f"{table}_pkey"), ident(STAGING), ident(table), sql.SQL(", ").join(map(ident, key_columns)),
                carried(layout, table, key_columns)))
            for table, key_columns in PRIMARY_KEYS.items()]
    jobs += [Build(table, ROWS_SF1[table] // (10 if method == "brin" else 1),
                   index_statement(table, columns, method, carried(layout, table, columns)))
             for table, columns, method in indexes_of(layout, columnar)]
    statistics = "ANALYZE {}.{}" if layout.freeze else "VACUUM (FREEZE, ANALYZE) {}.{}"
    jobs += [Build(table, ROWS_SF1[table], sql.SQL(statistics).format(ident(STAGING), ident(table)), statistics=True)
             for table in TABLES]
    return jobs


def indexes_of(layout: Layout, columnar: bool) -> list[tuple[str, tuple[str, ...], str]]:
    """The layout's indexes but the primary keys, less BRIN on columnar tables."""
    return [(t, c, m) for t, c, m in layout.indexes() if not (m == "brin" and columnar and t in FACT_TABLES)]


class Builds:
    """Keys, indexes and statistics, built by the loading sessions as the tables come in.

    A session whose share of the tables is copied goes on to whatever is ready while the
    others still copy (on a small machine, lineitem's copy leaves a CPU free long after the
    other tables are in): indexes before statistics, the largest first. A table's
    statistics wait for its indexes, as ANALYZE and CREATE INDEX on one table lock each
    other out. The times of the last copy, index and statistics make the load's phases."""

    def __init__(self, jobs: list[Build], tables: Iterable[str], say: Callable[[str], None]) -> None:
        self.pending = sorted(jobs, key=lambda job: (job.statistics, -job.weight))
        self.uncopied = set(tables)
        self.indexing: dict[str, int] = dict.fromkeys(self.uncopied, 0)  # index builds running per table
        self.changed = threading.Condition()
        self.failed = False
        self.say = say
        self.copied_at = self.indexed_at = self.analyzed_at = 0.0

    def copied(self, tables: list[str]) -> None:
        with self.changed:
            self.uncopied -= set(tables)
            if not self.uncopied:
                self.copied_at = time.perf_counter()
                self.say("building keys and indexes, collecting statistics")
            self.changed.notify_all()

    def fail(self) -> None:
        with self.changed:
            self.failed = True
            self.changed.notify_all()

    def ready(self) -> Build | None:
        for job in self.pending:
            if job.table in self.uncopied:
                continue
            if job.statistics and (self.indexing[job.table]
                                   or any(j.table == job.table and not j.statistics for j in self.pending)):
                continue
            return job
        return None

    def work(self, session: psycopg.Connection) -> None:
        """Build on `session` until nothing is left to start (or another session failed).
        The session comes with parallel index builds on (for_loading)."""
        parallel = True
        while True:
            with self.changed:
                job = None
                while not self.failed and self.pending and (job := self.ready()) is None:
                    self.changed.wait()
                if job is None:
                    return
                self.pending.remove(job)
                if not job.statistics:
                    self.indexing[job.table] += 1
                alone = bool(self.uncopied)
            try:
                if parallel == alone:
                    # while others still copy, an index build takes no parallel workers (the
                    # copies have the other CPUs); after that, as many as the server has
                    parallel = not alone
                    parallel_builds(session, parallel)
                session.execute(job.statement)
            except BaseException:
                self.fail()
                raise
            with self.changed:
                if job.statistics:
                    self.analyzed_at = time.perf_counter()
                else:
                    self.indexing[job.table] -= 1
                    self.indexed_at = time.perf_counter()
                self.changed.notify_all()

    def phases(self) -> dict[str, float]:
        """Wall time from the last copy to the last index ("indexes"), then to the last
        statistics ("analyze"); the smaller tables' builds ran during the copy phase."""
        indexed = max(self.indexed_at, self.copied_at)
        return {"indexes": indexed - self.copied_at, "analyze": max(self.analyzed_at, indexed) - indexed}


def build_citus(conn: psycopg.Connection, layout: Layout, columnar: bool, seconds: dict[str, float],
                say: Callable[[str], None]) -> None:
    """Keys, indexes and statistics of distributed tables: Citus makes its shards' keys and
    indexes itself, one statement at a time; the tables were not copied frozen."""
    ident = sql.Identifier
    say("building keys and indexes")
    started = time.perf_counter()
    for table, key_columns in PRIMARY_KEYS.items():
        conn.execute(sql.SQL("ALTER TABLE {}.{} ADD PRIMARY KEY ({})").format(
            ident(STAGING), ident(table), sql.SQL(", ").join(map(ident, key_columns))))
    indexes = indexes_of(layout, columnar)
    indexes += [(t, c, "btree") for t, all_cols in CITUS_INDEXES.items() for c in all_cols]
    for table, columns, method in indexes:
        conn.execute(index_statement(table, columns, method))
    seconds["indexes"] = time.perf_counter() - started
    say("vacuuming and collecting statistics (VACUUM ANALYZE)")
    started = time.perf_counter()
    for table in TABLES:
        conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}.{}").format(ident(STAGING), ident(table)))
    seconds["analyze"] = time.perf_counter() - started


def index_statement(table: str, columns: tuple[str, ...], method: str,
                    include: sql.Composable = sql.SQL("")) -> sql.Composed:
    return sql.SQL("CREATE INDEX ON {}.{} USING {} ({}){}").format(
        sql.Identifier(STAGING), sql.Identifier(table), sql.SQL(method),
        sql.SQL(", ").join(map(sql.Identifier, columns)), include)


def carried(layout: Layout, table: str, columns: tuple[str, ...]) -> sql.Composable:
    """The INCLUDE clause of the index on `columns` of `table`, if the layout gives it one."""
    extra = layout.include.get((table, columns))
    return sql.SQL(" INCLUDE ({})").format(sql.SQL(", ").join(map(sql.Identifier, extra))) if extra else sql.SQL("")


def run_together(jobs: Sequence[Callable[[], None]]) -> None:
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


def copy_table(conn: psycopg.Connection, source: Any, table: str, scale_factor: float,
               progress: Progress | None, before: int = 0, *, query: str | None = None,
               freeze: bool = False, fmt: str = "csv") -> int:
    """Copy one table from DuckDB into PostgreSQL; returns its rows (`before`: rows of
    earlier parts, for the progress bar). `query`: DuckDB's query giving the rows in the
    order to write them (otherwise the table as generated); `freeze`: COPY FREEZE (the table
    was made in this transaction); `fmt`: "csv" or "text" (Layout.copy_format).

    DuckDB writes the table into a temporary file that the COPY reads as it grows. The file
    has no name (DuckDB opens it through /proc/self/fd): closed, or the process killed, it
    is gone. A pipe in its place would make DuckDB wait for PostgreSQL, and its threads
    waiting on a full pipe spin: they took CPU the server's COPY needed (measured by hand
    on lineitem at SF 1: 8.6 s of DuckDB CPU into a file, 11 to 17.5 s into a pipe)."""
    with tempfile.TemporaryFile(prefix=f"exapg-tpch-{table}-") as spool:
        path = f"/proc/self/fd/{spool.fileno()}"
        written = threading.Event()
        failure: list[BaseException] = []
        cursor = source.cursor()

        def produce() -> None:
            try:
                rows = f"({query})" if query else table  # our own constant names and queries
                # DuckDB writes PostgreSQL's text format as CSV with a tab and no quote character;
                # into the file itself (by default it writes a file beside it and renames it at the end)
                options = "FORMAT csv, HEADER false, USE_TMP_FILE false" + (
                    ", DELIMITER '\t', QUOTE ''" if fmt == "text" else "")
                cursor.execute(f"COPY {rows} TO '{path}' ({options})")
            except BaseException as exc:
                failure.append(exc)
            finally:
                written.set()

        writer = threading.Thread(target=produce, name=f"tpch-{table}", daemon=True)
        writer.start()
        expected = expected_rows(table, scale_factor)
        done = 0
        target = sql.SQL("COPY {}.{} FROM STDIN (FORMAT {}{})").format(
            sql.Identifier(STAGING), sql.Identifier(table), sql.SQL(fmt), sql.SQL(", FREEZE" if freeze else ""))
        try:
            with conn.cursor() as cur, cur.copy(target) as copy:
                for chunk in following(spool, written):
                    copy.write(chunk)
                    done += chunk.count(b"\n")
                    if progress:
                        progress(table, before + done, expected)
                if failure:  # raised inside the COPY, so it ends in error: no partial table
                    raise ExaPGError(f"generating table {table} failed: {str(failure[0]).splitlines()[0]}")
        finally:
            if writer.is_alive():
                cursor.interrupt()  # the COPY failed or was interrupted: DuckDB stops writing
            writer.join(timeout=30)
            cursor.close()
        return done


def following(stream: Any, written: threading.Event, wait: float = 0.02) -> Iterator[bytes]:
    """The bytes of a file another thread writes, as they come, until `written` is set and
    all of them are read."""
    while True:
        finished = written.is_set()  # before reading: what was written until then is read next
        chunk = stream.read(CHUNK)
        if chunk:
            yield chunk
        elif finished:
            return
        else:
            written.wait(wait)


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

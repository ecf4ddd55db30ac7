"""DuckDB's tpch extension: dbgen, the 22 queries and the reference answers."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from exapg.errors import MissingDependencyError

ANSWER_SCALES = (0.01, 0.1, 1.0)  # scale factors DuckDB ships reference answers for
INSTALL_HINT = "pip install 'exapg[tpch]' (the duckdb and duckdb-extension-tpch wheels)"


@cache
def extension_path() -> Path:
    try:
        import duckdb  # noqa: F401
        import duckdb_extension_tpch
    except ImportError as exc:
        raise MissingDependencyError(f"TPC-H needs DuckDB's tpch extension: {INSTALL_HINT}") from exc
    found = sorted(Path(duckdb_extension_tpch.__path__[0]).glob("extensions/*/tpch.duckdb_extension"))
    if not found:
        raise MissingDependencyError(f"the duckdb-extension-tpch wheel has no extension file: {INSTALL_HINT}")
    return found[-1]


def connect(threads: int | None = None) -> Any:
    """An in-memory DuckDB with the tpch extension loaded from the wheel."""
    path = extension_path()
    import duckdb

    con = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        con.execute(f"LOAD '{path}'")
    except duckdb.Error as exc:
        raise MissingDependencyError(
            f"cannot load the tpch extension ({str(exc).splitlines()[0]}): duckdb and "
            "duckdb-extension-tpch must have the same version"
        ) from exc
    return con


def queries() -> dict[int, str]:
    con = connect(1)
    try:
        return {int(n): str(q) for n, q in con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall()}
    finally:
        con.close()


def answer(scale_factor: float, query: int) -> str | None:
    """The reference answer ('|'-separated, header first) or None when DuckDB has none."""
    con = connect(1)
    try:
        row = con.execute(
            "SELECT answer FROM tpch_answers() WHERE scale_factor = ? AND query_nr = ?",
            [scale_factor, query],
        ).fetchone()
    finally:
        con.close()
    return str(row[0]) if row else None


def has_answers(scale_factor: float) -> bool:
    return any(abs(scale_factor - s) < 1e-9 for s in ANSWER_SCALES)

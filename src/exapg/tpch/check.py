"""Compare a query's rows with DuckDB's reference answer.

The reference is text: a header line, then rows with values separated by '|'. Values
are compared as numbers when both sides are numbers, with a relative tolerance of
1e-6 (absolute 1e-9 near zero): PostgreSQL computes sums and averages on exact
numerics and DuckDB partly on doubles, so the last printed digits of an average may
differ, never more. Everything else (text, dates) must be equal. Rows are compared in
order: every TPC-H query orders its result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

REL_TOL = 1e-6
ABS_TOL = 1e-9


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str = ""


def parse_answer(text: str) -> tuple[list[str], list[list[str]]]:
    """Every line ends with a newline; an empty line is a row whose one value is NULL."""
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n") if body else []
    header = lines[0].split("|") if lines else []
    return header, [line.split("|") for line in lines[1:]]


def render(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def same_value(got: Any, expected: str) -> bool:
    if isinstance(got, bool):
        return str(got).lower() == expected.lower()
    if isinstance(got, int | float | Decimal):
        reference = _number(expected)
        return reference is not None and math.isclose(float(got), reference, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if got is None:
        return expected in ("NULL", "")
    return render(got) == expected


def compare(rows: list[tuple[Any, ...]], answer: str) -> Verdict:
    header, expected = parse_answer(answer)
    if len(rows) != len(expected):
        return Verdict(False, f"{len(rows)} rows, expected {len(expected)}")
    for number, (got, want) in enumerate(zip(rows, expected, strict=True), start=1):
        if len(got) != len(want):
            return Verdict(False, f"row {number}: {len(got)} columns, expected {len(want)}")
        for column, (value, reference) in enumerate(zip(got, want, strict=True)):
            if not same_value(value, reference):
                name = header[column] if column < len(header) else str(column + 1)
                return Verdict(False, f"row {number}, {name}: got {render(value)}, expected {reference}")
    return Verdict(True)

"""Answer checking for TPC-H (pure: DuckDB's answer text against result rows)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from exapg.errors import InvalidParameterError
from exapg.tpch.check import compare, parse_answer
from exapg.tpch.load import check_scale, expected_rows
from exapg.tpch.run import geometric_mean, parse_queries

ANSWER = "flag|qty|avg|shipped\nA|380456|25.575154611454693|1998-09-02\nN|8971|25.7787|1995-06-17\n"


def test_rows_equal_within_the_tolerance_pass():
    rows = [("A", Decimal("380456.00"), Decimal("25.5751546114546929"), date(1998, 9, 2)),
            ("N", 8971, 25.7787, date(1995, 6, 17))]
    assert compare(rows, ANSWER).ok


def test_a_number_off_by_more_than_the_tolerance_fails_and_names_the_column():
    rows = [("A", Decimal("380456.00"), Decimal("25.58"), date(1998, 9, 2)),
            ("N", 8971, 25.7787, date(1995, 6, 17))]
    verdict = compare(rows, ANSWER)
    assert not verdict.ok and verdict.detail == "row 1, avg: got 25.58, expected 25.575154611454693"


def test_order_matters():
    rows = [("N", 8971, 25.7787, date(1995, 6, 17)),
            ("A", Decimal("380456.00"), Decimal("25.5751546114546929"), date(1998, 9, 2))]
    assert not compare(rows, ANSWER).ok


def test_row_and_column_counts_are_checked():
    assert compare([], ANSWER).detail == "0 rows, expected 2"
    assert "columns" in compare([("A",), ("N",)], ANSWER).detail


def test_text_must_be_equal_and_a_number_is_not_text():
    assert not compare([("a",)], "x\nA\n").ok
    assert not compare([(1,)], "x\nabc\n").ok


def test_an_empty_line_is_a_null_row_and_a_header_alone_is_no_row():
    assert parse_answer("avg_yearly\n\n") == (["avg_yearly"], [[""]])
    assert compare([(None,)], "avg_yearly\n\n").ok
    assert not compare([(Decimal("1.0"),)], "avg_yearly\n\n").ok
    assert compare([], "c\n").ok


def test_zero_is_compared_with_an_absolute_tolerance():
    assert compare([(0.0,)], "x\n0\n").ok and not compare([(0.001,)], "x\n0\n").ok


@pytest.mark.parametrize("text", ["0", "-1", "1001", "nan"])
def test_absurd_scale_factors_are_refused(text):
    with pytest.raises(InvalidParameterError):
        check_scale(float(text))


def test_expected_rows_scale_except_nation_and_region():
    assert expected_rows("lineitem", 1) == 6_001_215 and expected_rows("nation", 0.01) == 25
    assert expected_rows("orders", 0.01) == 15_000


def test_query_lists():
    assert parse_queries(None) == list(range(1, 23))
    assert parse_queries("3, 1,3") == [3, 1]
    for bad in ("0", "23", "1,,2", "q1"):
        with pytest.raises(InvalidParameterError):
            parse_queries(bad)


def test_geometric_mean():
    assert geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert geometric_mean([]) is None and geometric_mean([1.0, 0.0]) is None

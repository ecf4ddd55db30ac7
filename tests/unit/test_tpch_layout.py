"""The loader's layouts and how it shares work between sessions (no server)."""

from __future__ import annotations

import pytest

from exapg.errors import InvalidParameterError
from exapg.tpch.load import layout_named, share_out
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

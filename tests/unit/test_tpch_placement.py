"""How Citus holds TPC-H: every join of the 22 queries runs beside the shards, none repartitions."""

from __future__ import annotations

import pytest

from exapg.tpch.schema import CITUS_INDEXES, CITUS_PLACEMENT, TABLES

# Every equi-join of the 22 TPC-H queries (join clauses and correlated subqueries alike).
JOINS = (
    ("lineitem", "l_orderkey", "orders", "o_orderkey"),      # Q3-5, Q7-10, Q12, Q18, Q21; Q4, Q21 correlated
    ("lineitem", "l_partkey", "part", "p_partkey"),          # Q8, Q9, Q14, Q19; Q17 correlated
    ("lineitem", "l_suppkey", "supplier", "s_suppkey"),      # Q5, Q7-9, Q15, Q21
    ("lineitem", "l_partkey", "partsupp", "ps_partkey"),     # Q9; Q20 correlated
    ("orders", "o_custkey", "customer", "c_custkey"),        # Q3, Q5, Q7, Q8, Q10, Q13, Q18; Q22 correlated
    ("partsupp", "ps_partkey", "part", "p_partkey"),         # Q2, Q16, Q20
    ("partsupp", "ps_suppkey", "supplier", "s_suppkey"),     # Q2, Q11, Q16, Q20
    ("customer", "c_nationkey", "nation", "n_nationkey"),    # Q5, Q7, Q8, Q10
    ("supplier", "s_nationkey", "nation", "n_nationkey"),    # Q2, Q5, Q7-9, Q11, Q20, Q21
    ("nation", "n_regionkey", "region", "r_regionkey"),      # Q2, Q5, Q8
)


def column_type(table: str, column: str) -> str:
    for definition in TABLES[table].split(", "):
        name, kind = definition.split(" ", 1)
        if name == column:
            return kind.removesuffix(" NOT NULL")
    raise AssertionError(f"{table} has no column {column}")


def group(table: str) -> str:
    placement = CITUS_PLACEMENT[table]
    return group(placement.colocate_with) if placement.colocate_with else table


def test_every_table_has_a_placement():
    assert set(CITUS_PLACEMENT) == set(TABLES)


def test_distributed_tables_are_the_facts_co_located_on_the_order_key():
    distributed = {t: p.column for t, p in CITUS_PLACEMENT.items() if p.column}
    assert distributed == {"orders": "o_orderkey", "lineitem": "l_orderkey"}
    assert group("lineitem") == group("orders")
    assert column_type("lineitem", "l_orderkey") == column_type("orders", "o_orderkey") == "bigint"


def test_a_table_is_distributed_after_the_one_it_is_co_located_with():
    order = list(CITUS_PLACEMENT)
    for table, placement in CITUS_PLACEMENT.items():
        if placement.colocate_with:
            assert CITUS_PLACEMENT[placement.colocate_with].column is not None
            assert order.index(placement.colocate_with) < order.index(table)


@pytest.mark.parametrize(("left", "left_column", "right", "right_column"), JOINS)
def test_no_join_needs_a_repartition(left, left_column, right, right_column):
    """Citus runs a join beside the shards when one side is a reference table, or both are
    co-located and joined on their distribution columns; anything else repartitions."""
    a, b = CITUS_PLACEMENT[left], CITUS_PLACEMENT[right]
    if a.column is None or b.column is None:
        return
    assert group(left) == group(right)
    assert (a.column, b.column) == (left_column, right_column)


def test_cluster_only_indexes_are_on_reference_tables_and_their_columns():
    for table, indexes in CITUS_INDEXES.items():
        assert CITUS_PLACEMENT[table].column is None
        for columns in indexes:
            assert all(column_type(table, column) for column in columns)

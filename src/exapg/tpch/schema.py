"""The TPC-H schema for PostgreSQL, its keys and indexes, and how Citus spreads it.

Text columns are varchar, not char(n): char pads with spaces, which changes answers
and costs space. Keys and join-key indexes are built after the data is in (faster
than maintaining them row by row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Loaded in this order: small tables first, so progress moves early.
TABLES: dict[str, str] = {
    "region": "r_regionkey integer NOT NULL, r_name varchar(25) NOT NULL, r_comment varchar(152)",
    "nation": "n_nationkey integer NOT NULL, n_name varchar(25) NOT NULL, n_regionkey integer NOT NULL, "
              "n_comment varchar(152)",
    "supplier": "s_suppkey integer NOT NULL, s_name varchar(25) NOT NULL, s_address varchar(40) NOT NULL, "
                "s_nationkey integer NOT NULL, s_phone varchar(15) NOT NULL, s_acctbal numeric(15,2) NOT NULL, "
                "s_comment varchar(101) NOT NULL",
    "customer": "c_custkey integer NOT NULL, c_name varchar(25) NOT NULL, c_address varchar(40) NOT NULL, "
                "c_nationkey integer NOT NULL, c_phone varchar(15) NOT NULL, c_acctbal numeric(15,2) NOT NULL, "
                "c_mktsegment varchar(10) NOT NULL, c_comment varchar(117) NOT NULL",
    "part": "p_partkey integer NOT NULL, p_name varchar(55) NOT NULL, p_mfgr varchar(25) NOT NULL, "
            "p_brand varchar(10) NOT NULL, p_type varchar(25) NOT NULL, p_size integer NOT NULL, "
            "p_container varchar(10) NOT NULL, p_retailprice numeric(15,2) NOT NULL, "
            "p_comment varchar(23) NOT NULL",
    "partsupp": "ps_partkey integer NOT NULL, ps_suppkey integer NOT NULL, ps_availqty integer NOT NULL, "
                "ps_supplycost numeric(15,2) NOT NULL, ps_comment varchar(199) NOT NULL",
    "orders": "o_orderkey bigint NOT NULL, o_custkey integer NOT NULL, o_orderstatus varchar(1) NOT NULL, "
              "o_totalprice numeric(15,2) NOT NULL, o_orderdate date NOT NULL, "
              "o_orderpriority varchar(15) NOT NULL, o_clerk varchar(15) NOT NULL, "
              "o_shippriority integer NOT NULL, o_comment varchar(79) NOT NULL",
    "lineitem": "l_orderkey bigint NOT NULL, l_partkey integer NOT NULL, l_suppkey integer NOT NULL, "
                "l_linenumber integer NOT NULL, l_quantity numeric(15,2) NOT NULL, "
                "l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL, "
                "l_tax numeric(15,2) NOT NULL, l_returnflag varchar(1) NOT NULL, "
                "l_linestatus varchar(1) NOT NULL, l_shipdate date NOT NULL, l_commitdate date NOT NULL, "
                "l_receiptdate date NOT NULL, l_shipinstruct varchar(25) NOT NULL, "
                "l_shipmode varchar(10) NOT NULL, l_comment varchar(44) NOT NULL",
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "region": ("r_regionkey",), "nation": ("n_nationkey",), "supplier": ("s_suppkey",),
    "customer": ("c_custkey",), "part": ("p_partkey",), "partsupp": ("ps_partkey", "ps_suppkey"),
    "orders": ("o_orderkey",), "lineitem": ("l_orderkey", "l_linenumber"),
}

# Foreign-key columns the queries join or filter on.
INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "nation": (("n_regionkey",),),
    "supplier": (("s_nationkey",),),
    "customer": (("c_nationkey",),),
    "partsupp": (("ps_suppkey",),),
    "orders": (("o_custkey",), ("o_orderdate",)),
    "lineitem": (("l_partkey", "l_suppkey"), ("l_suppkey",), ("l_shipdate",)),
}

FACT_TABLES = ("lineitem", "orders")  # stored with columnar under --columnar


@dataclass(frozen=True)
class DateOrder:
    """Rows written in the order of a date. `dated` is DuckDB's query giving the table's
    rows with that date as one more column, `exapg_date` (a join, when the date is another
    table's); `then` orders the rows of one date. The loader sorts by both, and above SF 1
    slices the table by `exapg_date` (see load.copy_all)."""

    dated: str
    then: str


@dataclass(frozen=True)
class Layout:
    """How the loader lays the tables out on disk and how it loads them.

    `plain` is what a careful user of a stock server does: one session, rows in the order
    they are generated, a B-tree on every key and date column, then VACUUM (FREEZE, ANALYZE).
    `exapg` (the default) is ExaPG's physical design for analytics:
    - the fact tables are written in date order (orders by order date, lineitem by the date
      of its order, an order's lines together), so each block holds a narrow range of dates
      and a block-range (BRIN) index of a few kilobytes lets a scan skip every block outside
      a query's dates (ship, commit and receipt dates follow the order date within months).
      The order holds across the whole table at any scale factor: above SF 1, where the
      data is generated in parts, the fact tables wait in a DuckDB file until every part is
      made, then go in by slices of dates;
    - every table is created and filled in one transaction with COPY FREEZE: its rows are
      frozen and its pages marked all-visible as they are written, so no VACUUM pass
      rewrites them afterwards and no query pays for setting hint bits;
    - rows travel in PostgreSQL's text format rather than CSV: no quoting to look for on
      either side, so the server parses them with less work;
    - tables are copied, and indexes built, by several sessions at once;
    - two of lineitem's B-trees carry the columns a hot aggregate reads (INCLUDE), so it is
      an index-only scan: with the table in date order, reading them from the heap through
      a key jumps all over it. Index-only scans work at once, because COPY FREEZE leaves
      every page all-visible. The primary key carries l_quantity (Q18 sums each order's
      quantities), the (l_partkey, l_suppkey) index l_quantity and l_shipdate (Q17's and
      Q20's correlated sums per part, and per part and supplier). Single node only: Citus
      builds its shards' keys and indexes itself.
    """

    name: str
    order: dict[str, DateOrder]  # table -> the date order its rows are written in
    btree: dict[str, tuple[tuple[str, ...], ...]]
    brin: dict[str, tuple[str, ...]]  # table -> its columns in one block-range index
    sessions: int  # at most this many sessions load at once (capped by the CPUs)
    freeze: bool  # COPY FREEZE, then ANALYZE only (otherwise VACUUM (FREEZE, ANALYZE))
    # (table, an index's key columns) -> the columns that index carries (INCLUDE)
    include: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = field(default_factory=dict)
    # how the rows travel: "csv", or PostgreSQL's own "text" format (tab-separated, nothing
    # quoted): cheaper to parse, and valid for TPC-H, whose generated text holds no tab,
    # newline or backslash (its grammar's words and punctuation)
    copy_format: str = "csv"

    def indexes(self) -> list[tuple[str, tuple[str, ...], str]]:
        """(table, columns, method) of every index but the primary keys."""
        found = [(t, cols, "btree") for t, all_cols in self.btree.items() for cols in all_cols]
        # one BRIN index per table over all its dates: one pass over the table builds it, and
        # each column is summarized on its own, so a condition on any one of them uses it
        return found + [(t, cols, "brin") for t, cols in self.brin.items()]


PLAIN = Layout("plain", order={}, btree=INDEXES, brin={}, sessions=1, freeze=False)
EXAPG = Layout(
    "exapg",
    order={
        "orders": DateOrder("SELECT *, o_orderdate AS exapg_date FROM orders", "o_orderkey"),
        # an order's lines stay together (a lookup by order key reads one block), in the
        # order of the order's date: ship, commit and receipt dates follow it within months
        "lineitem": DateOrder("SELECT l.*, o.o_orderdate AS exapg_date FROM lineitem l "
                              "JOIN orders o ON o.o_orderkey = l.l_orderkey", "l_orderkey, l_linenumber"),
    },
    btree={**INDEXES, "orders": (("o_custkey",),), "lineitem": (("l_partkey", "l_suppkey"),)},
    brin={"orders": ("o_orderdate",), "lineitem": ("l_shipdate", "l_receiptdate", "l_commitdate")},
    sessions=4,
    freeze=True,
    copy_format="text",
    include={("lineitem", ("l_orderkey", "l_linenumber")): ("l_quantity",),
             ("lineitem", ("l_partkey", "l_suppkey")): ("l_quantity", "l_shipdate")},
)
LAYOUTS = {layout.name: layout for layout in (EXAPG, PLAIN)}


@dataclass(frozen=True)
class Placement:
    """How Citus holds a table: distributed by a column (co-located with others on the
    same key type) or a reference table copied to every node."""

    column: str | None  # None: reference table
    colocate_with: str | None = None


# lineitem and orders are distributed by the order key and co-located: their join, and
# the correlated subqueries of Q4 and Q21 on l_orderkey, run shard by shard. Every other
# table is a reference table (a copy on every node): all of them join lineitem or orders
# on a column that is not the order key (l_partkey, l_suppkey, o_custkey), so distributed
# they would need repartition joins (Q8, Q9, Q14 and Q19 took seconds at SF 0.01); as
# copies those joins run beside each shard. At SF 1 part, partsupp and customer are
# 200k, 800k and 150k rows: a copy per node is what Citus advises for dimensions.
# Citus cannot plan Q17, Q20 and Q22 here, and no placement gets all 22 past it (docs/tpch.md).
CITUS_PLACEMENT: dict[str, Placement] = {
    "region": Placement(None), "nation": Placement(None), "supplier": Placement(None),
    "customer": Placement(None), "part": Placement(None), "partsupp": Placement(None),
    "orders": Placement("o_orderkey"), "lineitem": Placement("l_orderkey", "orders"),
}

# A join with a reference table runs once per shard, each time reading that node's copy:
# Q19 filtered all of part in each of lineitem's shards (200k rows, 32 times at SF 1).
# Built with the tables in cluster mode only, where the scan is repeated.
CITUS_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "part": (("p_brand", "p_container"),),
}

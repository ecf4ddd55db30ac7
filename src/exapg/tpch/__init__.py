"""TPC-H for ExaPG: load generated data into a running stack and run the 22 queries with
their answers checked.

Data and reference answers come from DuckDB's tpch extension (PyPI: duckdb and
duckdb-extension-tpch, the `tpch` extra of exapg); nothing is fetched at run time.
"""

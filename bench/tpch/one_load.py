"""One TPC-H load in a process of its own, as `exapg sample tpch` makes it; run.py's
timed_load starts it and reads its figures from the last line.

    one_load.py DSN SF LAYOUT SESSIONS LABEL      (the password in PGPASSWORD)
"""

from __future__ import annotations

import json
import sys

import psycopg
from run import RESULT, layout_of, measured_load  # run.py puts the project on the path


def main() -> None:
    if len(sys.argv) != 6:
        sys.exit(f"usage: {__doc__.strip().splitlines()[-1].strip()}")
    dsn, sf, name, sessions, label = sys.argv[1:]
    layout = layout_of(name, int(sessions))
    with psycopg.connect(dsn, autocommit=True) as conn:
        result = measured_load(conn, float(sf), layout, label)
    print(RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""One TPC-H load in a process of its own, as `exapg sample tpch` makes it; run.py's
timed_load starts it and reads its figures from the last line.

    one_load.py DSN SF LAYOUT SESSIONS LABEL      (the password in PGPASSWORD)
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

import psycopg
from run import RESULT, measured_load

from exapg.tpch.load import layout_named


def main() -> None:
    if len(sys.argv) != 6:
        sys.exit(f"usage: {__doc__.strip().splitlines()[-1].strip()}")
    dsn, sf, name, sessions, label = sys.argv[1:]
    layout = replace(layout_named(name), sessions=int(sessions))
    with psycopg.connect(dsn, autocommit=True) as conn:
        result = measured_load(conn, float(sf), layout, label)
    print(RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""The record of planned role changes: one table, named alike by its writer and its reader."""

from __future__ import annotations

import pytest

from exapg.cluster import roles
from exapg.errors import InvalidParameterError
from exapg.exporter import queries
from exapg.exporter.samples import RoleChange


def test_writer_and_exporter_name_the_same_table():
    assert roles.TABLE == queries.ROLE_CHANGES_TABLE == "exapg.role_changes"
    assert any(f"CREATE TABLE IF NOT EXISTS {roles.TABLE} (" in s for s in roles.SETUP)
    assert f"FROM {roles.TABLE} c" in queries.state(role_changes=True)
    assert f"FROM {roles.TABLE}" not in queries.state(heartbeat=True)  # it may not exist


def test_state_statement_reads_only_the_tables_asked_for():
    plain = queries.state()
    assert "heartbeat_seq" not in plain and "AS role_change\n" not in plain
    both = queries.state(heartbeat=True, role_changes=True)
    assert "heartbeat_seq" in both and "AS role_change" in both
    assert queries.state(heartbeat=True) is queries.state(heartbeat=True)  # built once


def test_kinds_are_switchover_and_failover():
    assert {k.value for k in roles.RoleChangeKind} == {"switchover", "failover"}
    assert roles._kind("failover") is roles.RoleChangeKind.FAILOVER
    with pytest.raises(InvalidParameterError, match="expected switchover, failover"):
        roles._kind("promotion")


def test_exporter_parses_the_newest_row():
    assert RoleChange.parse(None) is None
    change = RoleChange.parse({"at": 1700000000.5, "kind": "switchover", "from_server": "a",
                               "to_server": "b", "timeline": 3})
    assert change == RoleChange(1700000000.5, "switchover", "a", "b", 3)

"""The pure parts of switchover, failover and rejoin: the state swap, the history, the
preconditions, the split-brain verdict, pg_controldata's fields."""

from __future__ import annotations

from exapg.cluster.probe import NodeReport, Upstream
from exapg.cluster.split_brain import Writable, explain
from exapg.cluster.topology import Mode
from exapg.postgres.ctl import parse_controldata
from exapg.runtime import roles
from exapg.state import StackState


def report(state: str = "standby", healthy: bool = True, error: str | None = None) -> NodeReport:
    upstream = Upstream("streaming", "127.0.0.1", 5432, "exapg_standby1", 0.0, 0.0) if state == "standby" else None
    return NodeReport("standby", "standby", "127.0.0.1", 5433, healthy, state, upstream=upstream, error=error)


def test_a_swap_moves_the_primary_and_keeps_everything_else():
    state = StackState.new("p", Mode.HA, 0, True)
    once = roles.swapped(state)
    assert once.primary == "standby" and (once.mode, once.standby, once.created) == (state.mode, True, state.created)
    assert roles.swapped(once) == state


def test_the_history_keeps_the_last_entries():
    entries: list[dict] = []
    for timeline in range(2, 60):
        change = roles.RoleChange("2026-01-01T00:00:00+00:00", "switchover", "coordinator", "standby", timeline)
        entries = roles.with_change(entries, change, keep=50)
    assert len(entries) == 50 and entries[-1]["timeline"] == 59 and entries[0]["timeline"] == 10
    assert set(entries[0]) == {"at", "kind", "from_server", "to_server", "timeline"}


def test_switchover_preconditions():
    assert roles.switchover_blockers("coordinator", True, "standby", report()) == []
    assert "exapg failover" in roles.switchover_blockers("coordinator", False, "standby", report())[0]
    down = report("down", False, "connection refused")
    assert "does not answer (connection refused)" in roles.switchover_blockers("coordinator", True, "standby", down)[0]
    lagging = report(healthy=False, error="500 MB of WAL behind")
    assert "500 MB of WAL behind" in roles.switchover_blockers("coordinator", True, "standby", lagging)[0]
    assert roles.switchover_blockers("coordinator", True, "standby", None)


def test_split_brain_names_both_nodes_their_timelines_and_the_repair():
    assert explain("coordinator", []) == {}
    found = explain("coordinator", [Writable("coordinator", 1), Writable("standby", 2)])
    assert found["standby"] == ("writable on timeline 2, but configured as standby of coordinator: "
                                "run 'exapg rejoin standby'")
    assert found["coordinator"].startswith("primary on timeline 1 (pgBouncer serves it), but standby on timeline 2")
    assert "split brain" in found["coordinator"] and "exapg rejoin standby" in found["coordinator"]


def test_controldata_fields():
    text = (
        "pg_control version number:            1300\n"
        "Database cluster state:               shut down\n"
        "Latest checkpoint location:           0/3000060\n"
        "Latest checkpoint's TimeLineID:       2\n"
    )
    fields = parse_controldata(text)
    assert fields["Database cluster state"] == "shut down"
    assert fields["Latest checkpoint location"] == "0/3000060"
    assert fields["Latest checkpoint's TimeLineID"] == "2"

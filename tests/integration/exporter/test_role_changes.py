"""The record of planned role changes, written on a real primary and served by the exporter."""

from __future__ import annotations

import pytest
from exporter_support import server_label, stack_env

from exapg.cluster.roles import RoleChangeKind, latest_role_changes, record_role_change
from exapg.errors import ExaPGError, InvalidParameterError
from exapg.postgres.conn import connect

pytestmark = pytest.mark.integration

TIMELINE = "pg_replication_role_change_timeline"


def test_recorded_change_replicates_and_is_served_for_every_server(make_stack, start_exporter):
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    primary, standby = server_label(stack.coordinator.port), server_label(stack.standby.port)
    assert exporter.scrape().get_value(TIMELINE, server=primary) is None  # nothing recorded yet

    with connect(stack.standby) as conn:
        with pytest.raises(ExaPGError, match="still in recovery; promote it first"):
            record_role_change(conn, kind="failover", from_server=primary, to_server=standby)
        assert latest_role_changes(conn) == []
    with connect(stack.coordinator) as conn:
        with pytest.raises(InvalidParameterError, match="unknown role change 'promotion'"):
            record_role_change(conn, kind="promotion", from_server=primary, to_server=standby)
        first = record_role_change(conn, kind="switchover", from_server=standby, to_server=primary)
        second = record_role_change(conn, kind=RoleChangeKind.FAILOVER, from_server=primary,
                                    to_server=standby, timeline=7)
        assert latest_role_changes(conn, limit=5) == [second, first]
    assert (first.kind, first.timeline) == (RoleChangeKind.SWITCHOVER, 1)  # the server's own

    samples = exporter.scrape_until(
        lambda s: all(s.get_value(TIMELINE, server=x) == 7 for x in (primary, standby)))
    for server, instance in ((primary, "primary"), (standby, "standby")):
        assert samples.get_value(TIMELINE, server=server, instance=instance, kind="failover",
                                 from_server=primary, to_server=standby) == 7
        assert samples.get_value("pg_replication_role_change_timestamp_seconds",
                                 server=server) == pytest.approx(second.at.timestamp())
    with connect(stack.standby) as conn:
        assert latest_role_changes(conn) == [second]


def test_dropped_record_is_no_error(make_stack, start_exporter):
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    primary = server_label(stack.coordinator.port)
    with connect(stack.coordinator) as conn:
        record_role_change(conn, kind="switchover", from_server="a", to_server="b")
    exporter.scrape_until(lambda s: s.get_value(TIMELINE, server=primary) == 1)
    with connect(stack.coordinator) as conn:
        conn.execute("DROP SCHEMA exapg CASCADE")
    samples = exporter.scrape()
    assert samples.get_value("pg_up", server=primary) == 1
    assert samples.get_value(TIMELINE, server=primary) is None


def test_role_without_access_to_the_record_still_reads_the_rest(make_stack, start_exporter):
    stack = make_stack()
    primary = server_label(stack.coordinator.port)
    with connect(stack.coordinator) as conn:
        record_role_change(conn, kind="switchover", from_server="a", to_server="b")
        conn.execute("CREATE ROLE exporter_probe LOGIN PASSWORD 'probe-Pass:1' IN ROLE pg_monitor")
    exporter = start_exporter(stack_env(stack, POSTGRES_USER="exporter_probe",
                                        POSTGRES_PASSWORD="probe-Pass:1", EXPORTER_HEARTBEAT="off",
                                        POSTGRES_PASSWORD_FILE=""))
    for _ in range(3):  # the column would be added from the second scrape on
        samples = exporter.scrape()
        assert samples.get_value("pg_up", server=primary) == 1
        assert samples.get_value("pg_timeline_id", server=primary) == 1
        assert samples.get_value(TIMELINE, server=primary) is None

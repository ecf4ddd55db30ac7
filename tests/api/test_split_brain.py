"""A standby promoted by hand while its primary runs on: the cluster view shows the split."""

from __future__ import annotations

import pytest

from exapg.cluster.roles import RoleChangeKind, record_role_change
from exapg.postgres.conn import connect

pytestmark = pytest.mark.integration


def test_the_cluster_view_shows_two_writable_primaries(split_api):
    with split_api.client(split_api.token("admin", split_api.admin_password)) as admin:
        body = admin.get("/api/cluster").json()
        nodes = {n["name"]: n for n in body["nodes"]}
        roles = {name: (n["configured_role"], n["observed_role"], n["timeline"]) for name, n in nodes.items()}
        assert roles == {"coordinator": ("primary", "primary", 1), "standby": ("standby", "primary", 2)}
        assert nodes["standby"]["healthy"] is False and "promoted" in nodes["standby"]["error"]
        assert body["split_brain"] is True
        assert body["split_brain_nodes"] == [{"name": "coordinator", "timeline": 1},
                                             {"name": "standby", "timeline": 2}]
        assert body["pooler_target"] == "coordinator"
        assert body["latest_role_change"] is None  # nothing recorded, not even the table
        # a record on the promoted side only (each side of a split has its own) is found
        with connect(split_api.stack.standby) as conn:
            record_role_change(conn, kind=RoleChangeKind.FAILOVER, from_server="coordinator", to_server="standby")
        change = admin.get("/api/cluster").json()["latest_role_change"]
        assert (change["kind"], change["from_server"], change["to_server"], change["timeline"]) == (
            "failover", "coordinator", "standby", 2)

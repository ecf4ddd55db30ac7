"""The cluster view's roles, timelines, split brain and pooler target, in-process.

With the stack access's nodes all down, the answer comes from the topology alone; the
split brain is shown on reports made by hand in place of the live inspection (one of our
own layers, never PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exapg.api.routers import cluster as cluster_router
from exapg.api.services import cluster_view
from exapg.cluster.probe import NodeReport
from exapg.cluster.roles import RoleChange, RoleChangeKind
from exapg.cluster.topology import Mode, Node, Topology
from exapg.status import Role
from tests.unit.api.conftest import DATA, Api


def serve(monkeypatch: pytest.MonkeyPatch, *reports: NodeReport) -> None:
    """The live inspection answers `reports` (the access's own nodes are all down)."""
    monkeypatch.setattr(cluster_router, "inspect", lambda access, pools: (access.topology(), list(reports)))


def down(name: str, port: int) -> NodeReport:
    return NodeReport(name, name, "127.0.0.1", port, False, "down", error="connection refused")


def test_with_every_node_down_the_roles_come_from_the_topology(api: Api, monkeypatch: pytest.MonkeyPatch):
    serve(monkeypatch, down("coordinator", 5432), down("standby", 5440))
    answer = api.client.get("/api/cluster", headers=api.session("viewer"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    roles = {n["name"]: (n["configured_role"], n["observed_role"], n["timeline"]) for n in body["nodes"]}
    assert roles == {"coordinator": ("primary", "down", None), "standby": ("standby", "down", None)}
    assert body["split_brain"] is False and body["split_brain_nodes"] == []
    assert body["pooler_target"] == "coordinator"
    assert body["latest_role_change"] is None  # no node can tell


def test_two_writable_nodes_are_a_split_brain(api: Api, monkeypatch: pytest.MonkeyPatch):
    serve(monkeypatch,
          NodeReport("coordinator", "coordinator", "127.0.0.1", 5432, True, "primary", timeline=1),
          NodeReport("standby", "standby", "127.0.0.1", 5440, False, "primary", timeline=2,
                     error="promoted: not in recovery"))
    body = api.client.get("/api/cluster", headers=api.session("viewer")).json()
    roles = {n["name"]: (n["configured_role"], n["observed_role"], n["timeline"]) for n in body["nodes"]}
    assert roles == {"coordinator": ("primary", "primary", 1), "standby": ("standby", "primary", 2)}
    assert body["split_brain"] is True
    assert body["split_brain_nodes"] == [{"name": "coordinator", "timeline": 1},
                                         {"name": "standby", "timeline": 2}]
    assert body["pooler_target"] == "coordinator"


def test_the_newest_recorded_role_change_is_served(api: Api, monkeypatch: pytest.MonkeyPatch):
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    change = RoleChange(3, at, RoleChangeKind.SWITCHOVER, "coordinator", "standby", 2)
    serve(monkeypatch, down("coordinator", 5432), down("standby", 5440))
    monkeypatch.setattr(cluster_router, "latest_role_change", lambda *_: change)
    body = api.client.get("/api/cluster", headers=api.session("viewer")).json()
    assert body["latest_role_change"] == {
        "id": 3, "at": "2026-01-02T03:04:05Z", "kind": "switchover",
        "from_server": "coordinator", "to_server": "standby", "timeline": 2,
    }


def test_the_pooler_target_is_the_first_node_whatever_its_role():
    switched = Topology(Mode.HA, (
        Node("coordinator", Role.COORDINATOR, 5432, DATA, primary="standby"),
        Node("standby", Role.STANDBY, 5440, DATA),
    ))
    assert cluster_view.pooler_target(switched) == "coordinator"
    report = NodeReport("coordinator", "coordinator", "127.0.0.1", 5432, True, "standby", timeline=2)
    assert cluster_view.roles(switched, report) == {"configured_role": "standby", "observed_role": "standby"}


def test_the_split_brain_fields_are_in_the_openapi_document(api: Api):
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert {"split_brain", "split_brain_nodes", "pooler_target", "latest_role_change"} <= set(
        schemas["ClusterPublic"]["properties"])
    assert {"configured_role", "observed_role", "timeline"} <= set(schemas["NodePublic"]["properties"])

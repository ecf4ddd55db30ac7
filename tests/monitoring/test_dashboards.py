"""Grafana provisioning: data source, dashboard provider and the three dashboards."""

from __future__ import annotations

import json

import yaml

from tests.monitoring.promql import DASHBOARDS, MONITORING

GRAFANA = MONITORING / "grafana"


def test_datasource_points_at_the_compose_prometheus():
    sources = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(s["uid"], s["type"], s["url"], s["isDefault"]) for s in sources] == [
        ("exapg-prometheus", "prometheus", "http://prometheus:9090", True)]


def test_provider_reads_the_mounted_json_folder():
    provider = yaml.safe_load((GRAFANA / "dashboards" / "exapg.yml").read_text())["providers"][0]
    # docker-compose.monitoring.yml mounts monitoring/grafana at /etc/grafana/provisioning
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/json"
    assert provider["type"] == "file"


def test_overview_replication_and_cluster_dashboards_exist():
    assert {p.stem for p in DASHBOARDS} == {"overview", "replication", "cluster"}


def test_dashboards_are_well_formed():
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "exapg-prometheus", panel["title"]
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]

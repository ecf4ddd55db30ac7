"""A node whose killed postmaster lingers as a zombie starts again (no server)."""

from __future__ import annotations

from types import SimpleNamespace

from exapg.runtime import nodes


class FakeServer:
    def __init__(self, running: bool) -> None:
        self.running, self.removed = running, False

    def pidfile(self) -> object | None:
        return object() if self.running else None

    def remove_stale_pidfile(self) -> bool:
        self.removed = True
        return True


def node_with_pidfile(tmp_path):
    (tmp_path / "postmaster.pid").write_text("12345\n")
    return SimpleNamespace(name="standby", datadir=tmp_path)


def test_the_stale_file_goes_once_the_left_processes_exited(tmp_path, monkeypatch):
    left = [[4242], [4242], []]  # two looks with a child still there, then none
    monkeypatch.setattr(nodes.processes, "in_data_dir", lambda _d: left.pop(0) if len(left) > 1 else left[0])
    server = FakeServer(running=False)
    assert nodes.clear_dead_postmaster(node_with_pidfile(tmp_path), server) and server.removed


def test_a_running_server_keeps_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(nodes.processes, "in_data_dir", lambda _d: [])
    server = FakeServer(running=True)
    assert not nodes.clear_dead_postmaster(node_with_pidfile(tmp_path), server) and not server.removed


def test_a_child_that_never_exits_leaves_the_file_for_postgresql_to_refuse(tmp_path, monkeypatch):
    monkeypatch.setattr(nodes.processes, "in_data_dir", lambda _d: [4242])
    monkeypatch.setattr(nodes, "ORPHAN_GRACE", 0.2)
    server = FakeServer(running=False)
    assert not nodes.clear_dead_postmaster(node_with_pidfile(tmp_path), server) and not server.removed

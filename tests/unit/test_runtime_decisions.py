"""The local runtime's decisions, without a server: the desired state, which nodes retire,
and the order in which `up` saves the state around a scale-in."""

from __future__ import annotations

import os
import pwd
from dataclasses import replace
from pathlib import Path

import pytest

from exapg import state as state_file
from exapg.cluster.topology import Mode, Node, Topology
from exapg.credentials import Secrets
from exapg.errors import ExaPGError, InvalidParameterError
from exapg.proc import ServiceUser
from exapg.runtime import local, nodes, preflight, scaling, supervised
from exapg.runtime.local import LocalRuntime
from exapg.settings import Settings
from exapg.state import StackState

SECRETS = Secrets("pw", "repl", "key", "admin")


def me() -> ServiceUser:
    entry = pwd.getpwuid(os.geteuid())
    return ServiceUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def settings(tmp_path: Path) -> Settings:
    return Settings.load(environ={"EXAPG_STATE_DIR": str(tmp_path / "stack"), "EXAPG_ENV_FILE": "/nonexistent"})


@pytest.mark.parametrize("previous, asked, expected", [
    (None, (None, None, None), (Mode.HA, 0, True)),
    (None, (Mode.CLUSTER, None, None), (Mode.CLUSTER, 2, False)),
    (None, (Mode.STANDALONE, 5, None), (Mode.STANDALONE, 0, False)),
    (None, (Mode.HA, None, False), (Mode.HA, 0, False)),
    ((Mode.CLUSTER, 3, True), (None, None, None), (Mode.CLUSTER, 3, True)),
    ((Mode.CLUSTER, 3, True), (None, 4, None), (Mode.CLUSTER, 4, True)),
    ((Mode.CLUSTER, 3, True), (Mode.HA, None, None), (Mode.HA, 0, True)),
    ((Mode.HA, 0, True), (Mode.CLUSTER, None, None), (Mode.CLUSTER, 2, False)),
    ((Mode.HA, 0, True), (Mode.STANDALONE, None, None), (Mode.STANDALONE, 0, False)),
])
def test_desired_state(previous, asked, expected):
    before = StackState.new("exapg", *previous) if previous else None
    desired = scaling.desired_state("exapg", before, *asked)
    assert (desired.mode, desired.workers, desired.standby) == expected


def test_an_unchanged_request_keeps_the_previous_state_itself():
    before = StackState.new("exapg", Mode.CLUSTER, 3, True)
    assert scaling.desired_state("exapg", before, Mode.CLUSTER, 3, None) is before


def test_the_primary_survives_up_and_a_shape_change_waits_for_a_switch_back():
    before = replace(StackState.new("exapg", Mode.HA, 0, True), primary="standby")
    assert scaling.desired_state("exapg", before, None, None, None).primary == "standby"
    with pytest.raises(InvalidParameterError, match="exapg switchover"):
        scaling.desired_state("exapg", before, Mode.CLUSTER, None, None)


class Recorder:
    """Stands in for every step that touches a server; records the order they ran in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, runtime: LocalRuntime, fail_retire: bool = False):
        self.events: list[str] = []
        self.runtime = runtime
        user = me()
        monkeypatch.setitem(runtime.stack.__dict__, "user", user)
        for name in ("validate", "check_state_dir", "check_dependencies"):
            monkeypatch.setattr(preflight, name, lambda *a, **k: None)
        monkeypatch.setattr(LocalRuntime, "_store_secrets", lambda _: (SECRETS, None))
        monkeypatch.setattr(nodes, "ensure_node", lambda stack, node, *a: self.note(f"ensure {node.name}"))
        monkeypatch.setattr(nodes, "prepare_coordinator", lambda *a: self.note("prepare coordinator"))
        monkeypatch.setattr(scaling, "register_workers", lambda *a: self.note("register workers"))
        monkeypatch.setattr(supervised, "ensure", lambda *a, **k: self.note("programs"))

        def retire(stack, leaving: list[Node], *a):
            if fail_retire:
                raise ExaPGError("drain refused")
            return self.note("retire " + ",".join(n.name for n in leaving))

        monkeypatch.setattr(scaling, "retire", retire)
        real_save = state_file.save

        def save(path, state: StackState, user):
            self.note(f"save {state.mode} {state.workers}")
            real_save(path, state, user)

        monkeypatch.setattr(local.state_file, "save", save)

    def note(self, event: str) -> list[str]:
        self.events.append(event)
        return []

    def saved(self) -> StackState | None:
        return self.runtime.stack.state()


def started(tmp_path: Path, mode: Mode, workers: int) -> LocalRuntime:
    runtime = LocalRuntime(settings(tmp_path))
    runtime.stack.root.mkdir(parents=True)
    state_file.save(runtime.stack.state_path, StackState.new("exapg", mode, workers, False),
                    me())
    return runtime


def test_scale_in_saves_the_smaller_state_only_once_the_workers_are_drained(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.CLUSTER, 4)
    recorder = Recorder(monkeypatch, runtime)
    runtime.up(mode=Mode.CLUSTER, workers=2)
    assert recorder.events == [
        "ensure coordinator", "prepare coordinator", "retire worker4,worker3", "save cluster 2",
        "ensure worker1", "ensure worker2", "register workers", "programs",
    ]


def test_a_failed_drain_leaves_the_leaving_workers_in_the_state(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.CLUSTER, 4)
    recorder = Recorder(monkeypatch, runtime, fail_retire=True)
    with pytest.raises(ExaPGError, match="drain refused"):
        runtime.up(mode=Mode.CLUSTER, workers=2)
    assert not any(e.startswith("save") for e in recorder.events)
    assert recorder.saved().workers == 4  # status, stop and the next up still know worker3 and worker4


def test_scale_out_saves_the_state_before_starting_anything(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.CLUSTER, 2)
    recorder = Recorder(monkeypatch, runtime)
    runtime.up(mode=Mode.CLUSTER, workers=3)
    assert recorder.events[0] == "save cluster 3"
    assert recorder.events[1:] == ["ensure coordinator", "prepare coordinator", "ensure worker1",
                                   "ensure worker2", "ensure worker3", "register workers", "programs"]


def test_the_coordinator_is_never_retired(tmp_path):
    s = settings(tmp_path)
    everything = Topology.build(s, Mode.CLUSTER, 3, True)
    alone = Topology(Mode.STANDALONE, everything.nodes[:1])
    assert [n.name for n in scaling.retiring(everything, alone)] == ["standby", "worker3", "worker2", "worker1"]

"""The local runtime's decisions, without a server: the desired state, which nodes retire,
which changes of mode are refused, and the order in which `up` saves the state around a
scale-in or a change of mode."""

from __future__ import annotations

import os
import pwd
from dataclasses import replace
from pathlib import Path

import pytest

from exapg import state as state_file
from exapg.cluster.citus import Holdings
from exapg.cluster.topology import Mode, Node, Topology
from exapg.credentials import Secrets
from exapg.errors import ExaPGError, ExitCode, InvalidParameterError
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


# -- changes of mode -----------------------------------------------------------------------------
NOTHING = Holdings((), (), ())
ORDERED_PAIRS = [(a, b) for a in Mode for b in Mode if a != b]


@pytest.mark.parametrize("before, after", ORDERED_PAIRS)
@pytest.mark.parametrize("running", [True, False])
def test_which_changes_of_mode_are_refused_up_front(before, after, running):
    """Standalone <-> ha and into cluster always go ahead; out of cluster only when the
    running coordinator shows that Citus holds nothing (a stopped stack cannot tell)."""
    previous = StackState.new("exapg", before, 2 if before == Mode.CLUSTER else 0, before == Mode.HA)
    desired = StackState.new("exapg", after, 2 if after == Mode.CLUSTER else 0, after == Mode.HA)
    refusal = scaling.mode_change_refusal("exapg", previous, desired, NOTHING if running else None)
    if before == Mode.CLUSTER and not running:
        assert refusal is not None
        assert "is stopped" in refusal and "'exapg up'" in refusal and f"--mode {after}" in refusal
    else:
        assert refusal is None


@pytest.mark.parametrize("held, says", [
    (Holdings(("events", "orders", "items", "parts"), (), ()),
     ["Citus manages 4 table(s) (events, orders, items and 1 more)", "undistribute_table('events')"]),
    (Holdings((), ("archive",), ()), ["columnar", "alter_table_set_access_method('archive', 'heap')"]),
    (Holdings((), (), ("cdc",)), ["slot(s) cdc", "pg_drop_replication_slot('cdc')"]),
])
@pytest.mark.parametrize("target", [Mode.STANDALONE, Mode.HA])
def test_leaving_cluster_mode_with_something_citus_holds_is_refused_with_what_to_do(held, says, target):
    previous = StackState.new("exapg", Mode.CLUSTER, 2, False)
    desired = scaling.desired_state("exapg", previous, target, None, None)
    refusal = scaling.mode_change_refusal("exapg", previous, desired, held)
    assert refusal is not None and "\n" not in refusal
    assert all(part in refusal for part in says)
    assert f"'exapg up --mode {target}' again" in refusal and "nothing was changed" in refusal


def test_a_new_stack_and_a_scale_are_no_change_of_mode():
    cluster = StackState.new("exapg", Mode.CLUSTER, 3, False)
    assert scaling.mode_change_refusal("exapg", None, cluster, None) is None
    assert scaling.mode_change_refusal("exapg", cluster, replace(cluster, workers=1), None) is None


def test_a_refused_change_of_mode_writes_and_starts_nothing(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.CLUSTER, 2)
    recorder = Recorder(monkeypatch, runtime)
    before = runtime.stack.state_path.read_bytes()
    with pytest.raises(InvalidParameterError, match="is stopped") as refused:
        runtime.up(mode=Mode.HA)  # no coordinator runs: nothing can be looked at
    assert refused.value.exit_code == ExitCode.INVALID_PARAMETERS
    assert recorder.events == []
    assert runtime.stack.state_path.read_bytes() == before
    assert sorted(p.name for p in runtime.stack.root.iterdir()) == ["state.json"]


def test_leaving_cluster_mode_drops_citus_before_the_coordinator_restarts_and_saves_last(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.CLUSTER, 2)
    recorder = Recorder(monkeypatch, runtime)
    monkeypatch.setattr(scaling, "check_mode_change", lambda *a: recorder.note("check"))
    monkeypatch.setattr(scaling, "leave_cluster", lambda *a: recorder.note("drop citus"))
    runtime.up(mode=Mode.HA)
    assert recorder.events == [
        "check", "drop citus", "ensure coordinator", "prepare coordinator", "retire worker2,worker1",
        "save ha 0", "ensure standby", "programs",
    ]


def test_a_cluster_without_workers_keeps_its_state_until_citus_is_gone(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.CLUSTER, 0)
    recorder = Recorder(monkeypatch, runtime)
    monkeypatch.setattr(scaling, "check_mode_change", lambda *a: None)

    def leave(*a):
        raise ExaPGError("cannot drop extension citus")

    monkeypatch.setattr(scaling, "leave_cluster", leave)
    with pytest.raises(ExaPGError, match="citus"):
        runtime.up(mode=Mode.STANDALONE)
    assert recorder.saved().mode == Mode.CLUSTER  # the next up still knows Citus is there


def test_entering_cluster_mode_saves_first_and_registers_workers(tmp_path, monkeypatch):
    runtime = started(tmp_path, Mode.STANDALONE, 0)
    recorder = Recorder(monkeypatch, runtime)
    runtime.up(mode=Mode.CLUSTER)
    assert recorder.events == ["save cluster 2", "ensure coordinator", "prepare coordinator",
                               "ensure worker1", "ensure worker2", "register workers", "programs"]

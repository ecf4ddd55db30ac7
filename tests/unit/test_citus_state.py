"""Citus state as operators see it, built from catalog rows (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from exapg.cluster.citus import node_from_row, rebalance_from_row

STARTED = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def test_a_reachable_worker_and_the_coordinator():
    worker = node_from_row((2, "10.0.0.2", 5432, False, True, True, True, None, 17, 9_216_000))
    assert (worker.role, worker.active, worker.reachable, worker.shards, worker.bytes) == (
        "worker", True, True, 17, 9_216_000)
    assert worker.error is None
    coordinator = node_from_row((1, "10.0.0.1", 5432, True, True, False, True, None, 1, 8192))
    assert coordinator.role == "coordinator" and not coordinator.should_have_shards


def test_an_unreachable_worker_keeps_the_first_line_of_its_error():
    node = node_from_row((3, "w", 5433, False, True, True, False, "\nfailed to connect to w:5433\nmore", 5, 0))
    assert node.reachable is False and node.error == "failed to connect to w:5433"


def test_a_worker_not_probed_has_unknown_reachability():
    assert node_from_row((3, "w", 5433, False, False, True, None, None, 0, 0)).reachable is None


def test_a_running_rebalance_counts_its_moves():
    details = {"task_state_counts": {"done": 3, "runnable": 5, "running": 2}, "tasks": []}
    job = rebalance_from_row((7, "running", STARTED, None, details))
    assert (job.job_id, job.running, job.tasks_done, job.tasks_total) == (7, True, 3, 10)
    assert job.started_at == STARTED.timestamp() and job.finished_at is None and job.message is None


def test_a_failing_rebalance_reports_the_move_s_error():
    details = {"task_state_counts": {"error": 1, "done": 1},
               "tasks": [{"state": "done"}, {"state": "error", "message": "ERROR: could not connect\nDETAIL: x"}]}
    job = rebalance_from_row((8, "failing", STARTED, None, details))
    assert job.running and job.message == "ERROR: could not connect"


def test_a_finished_rebalance_without_details_is_not_running():
    job = rebalance_from_row((9, "finished", STARTED, STARTED, None))
    assert not job.running and (job.tasks_done, job.tasks_total) == (0, 0)
    assert job.finished_at == STARTED.timestamp()

"""Lag, rate, consistency and health rules, on hand-made samples and a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exapg.exporter import analysis
from exapg.exporter.analysis import HealthInputs, RateTracker
from exapg.exporter.samples import Sender, ServerSample, Slot

NOW = 1_800_000_000.0


def primary(lsn: float = 1000.0, **kw) -> ServerSample:
    values = dict(in_recovery=False, system_identifier="7", timeline_id=1, current_lsn=lsn,
                  insert_lsn=lsn,
                  receive_lsn=None, replay_lsn=None, last_replay_time=None, server_time=NOW,
                  replay_paused=None, receiver_status=None, receiver_last_msg_time=None)
    return ServerSample(**{**values, **kw})


def standby(replay: float = 1000.0, receive: float | None = 1000.0, **kw) -> ServerSample:
    values = dict(in_recovery=True, system_identifier="7", timeline_id=1, current_lsn=None,
                  insert_lsn=None,
                  receive_lsn=receive, replay_lsn=replay, last_replay_time=NOW - 3600,
                  server_time=NOW, replay_paused=False, receiver_status="streaming",
                  receiver_last_msg_time=NOW)
    return ServerSample(**{**values, **kw})


def sender(**positions) -> Sender:
    stages = {s: positions.get(s, 1000.0) for s in ("sent", "write", "flush", "replay")}
    lags = {s: positions.get(f"{s}_lag") for s in ("write", "flush", "replay")}
    return Sender("standby1", "10.0.0.2", "streaming", "async", stages, lags)


# -- lag -----------------------------------------------------------------------------------
def test_idle_pair_has_zero_lag_however_old_the_last_commit():
    assert analysis.standby_lag_seconds(standby(), primary()) == 0.0
    assert analysis.standby_lag_bytes(standby(), primary()) == 0.0


def test_replay_behind_receive_is_the_age_of_the_last_replayed_commit():
    s = standby(replay=500.0, receive=1000.0, last_replay_time=NOW - 42)
    assert analysis.standby_lag_seconds(s, primary()) == 42
    assert analysis.standby_lag_bytes(s, primary(lsn=1500.0)) == 1000.0


def test_in_flight_wal_of_a_streaming_standby_is_not_time_lag():
    assert analysis.standby_lag_seconds(standby(), primary(lsn=2000.0)) == 0.0
    assert analysis.standby_lag_bytes(standby(), primary(lsn=2000.0)) == 1000.0


def test_disconnected_standby_behind_the_primary_lags():
    s = standby(receiver_status=None, last_replay_time=NOW - 90)
    assert analysis.standby_lag_seconds(s, primary(lsn=5000.0)) == 90
    assert analysis.standby_lag_bytes(s, primary(lsn=5000.0)) == 4000.0


def test_unknown_values_stay_unknown():
    behind = standby(replay=500.0, last_replay_time=None)
    assert analysis.standby_lag_seconds(behind, primary()) is None  # never replayed a commit
    assert analysis.standby_lag_bytes(standby(), None) is None  # no primary to compare with
    assert analysis.standby_lag_seconds(primary(), primary()) is None  # not in recovery


def test_sender_lags_by_stage():
    s = sender(sent=900.0, write=800.0, flush=700.0, replay=600.0, replay_lag=1.5)
    assert analysis.sender_lag_bytes(s, 1000.0) == {
        "sent": 100.0, "write": 200.0, "flush": 300.0, "replay": 400.0}
    # NULL lag columns: 0 when caught up, left out otherwise
    assert analysis.sender_lag_seconds(s, 1000.0) == {"replay": 1.5}
    assert analysis.sender_lag_seconds(sender(), 1000.0) == {"write": 0.0, "flush": 0.0, "replay": 0.0}


def test_primary_reports_its_worst_standby():
    senders = (sender(replay=900.0, replay_lag=0.2), sender(replay=100.0, replay_lag=3.0))
    assert analysis.primary_lag(senders, 1000.0) == (900.0, 3.0)
    assert analysis.primary_lag((), 1000.0) == (None, None)


# -- rate ----------------------------------------------------------------------------------
def test_rate_is_bytes_per_second_between_collections():
    rate = RateTracker()
    assert rate.observe(0.0, 1_000_000) is None  # nothing to compare with yet
    assert rate.observe(2.0, 1_400_000) == 200_000
    assert rate.observe(4.0, 1_400_000) == 0.0  # idle primary: 0, not the position


def test_rate_ignores_scrapes_closer_than_a_second():
    rate = RateTracker()
    rate.observe(0.0, 0)
    rate.observe(10.0, 10_000)
    assert rate.observe(10.05, 10_050) == pytest.approx(10_050 / 10.05)  # against t=0
    assert rate.observe(11.0, 11_000) == pytest.approx(1000.0)  # against t=10


def test_rate_restarts_when_the_position_goes_back():
    rate = RateTracker()
    rate.observe(0.0, 5000)
    assert rate.observe(2.0, 100) is None


# -- roles and consistency -----------------------------------------------------------------
def test_configured_primary_preferred_else_a_promoted_standby():
    p, promoted = primary(), primary(lsn=7.0)
    assert analysis.choose_primary([("primary", p), ("standby", promoted)]) is p
    assert analysis.choose_primary([("primary", None), ("standby", promoted)]) is promoted
    assert analysis.choose_primary([("primary", None), ("standby", standby())]) is None


def test_consistency_checks_identity_timeline_and_heartbeat():
    p = primary(heartbeat_mark=(10, 900.0))
    seen = standby(replay=950.0, heartbeat_read=True, heartbeat_seq=10)
    assert analysis.consistent(seen, p)
    assert not analysis.consistent(replace(seen, system_identifier="8"), p)
    assert not analysis.consistent(replace(seen, timeline_id=2), p)
    # replayed past the heartbeat's commit, yet it is not there: diverged
    assert not analysis.consistent(replace(seen, heartbeat_seq=9), p)
    assert not analysis.consistent(replace(seen, heartbeat_seq=None), p)
    # not replayed that far yet: lag, not inconsistency
    assert analysis.consistent(replace(seen, replay_lsn=800.0, heartbeat_seq=9), p)
    # heartbeat table not read (not replicated yet): undecided, only identity and timeline
    assert analysis.consistent(replace(seen, heartbeat_read=False, heartbeat_seq=None), p)


# -- health --------------------------------------------------------------------------------
def health(s, p=None, **kw):
    p = primary() if p is None else p
    inputs = dict(standby=s, primary=p, lag_seconds=analysis.standby_lag_seconds(s, p) if s else None,
                  lag_bytes=analysis.standby_lag_bytes(s, p) if s else None, consistent=True)
    found = analysis.deductions(HealthInputs(**{**inputs, **kw}))
    return analysis.score(found), {k: v for k, v in found.items() if v}


def test_healthy_pair_scores_100_with_every_reason_present():
    found = analysis.deductions(HealthInputs(standby(), primary(), 0.0, 0.0, True))
    assert set(found) == set(analysis.DEDUCTIONS) and sum(found.values()) == 0
    assert health(standby()) == (100.0, {})


def test_deductions_add_up():
    s = standby(replay=500.0, replay_paused=True, last_replay_time=NOW - 120)
    assert health(s) == (60.0, {"replay_paused": 20.0, "lag": 20.0})
    score, found = health(s, consistent=False)
    assert found == {"replay_paused": 20.0, "lag": 20.0, "inconsistent": 30.0}
    assert score == 30.0


def test_down_servers_and_broken_streaming():
    assert health(None) == (50.0, {"server_down": 50.0})
    assert health(None, p=None, primary=None)[0] == 0.0
    assert health(standby(receiver_status="waiting")) == (70.0, {"not_streaming": 30.0})
    assert health(primary()) == (50.0, {"not_replica": 50.0})


def test_slot_deductions_come_from_the_primary():
    slots = (Slot("a", "physical", False, "reserved", 1.0, None, None),
             Slot("b", "physical", True, "lost", None, None, None))
    assert health(standby(), p=primary(slots=slots)) == (
        70.0, {"slot_at_risk": 20.0, "slot_inactive": 10.0})


@pytest.mark.parametrize(("seconds", "size", "points"), [
    (None, None, 0), (9.9, 0, 0), (10, 0, 10), (59, 0, 10), (60, 0, 20), (300, 0, 30),
    (0, 16 * 2**20, 10), (0, 2**30, 30), (15, 300 * 2**20, 20),
])
def test_lag_tiers(seconds, size, points):
    assert analysis.lag_deduction(seconds, size) == points

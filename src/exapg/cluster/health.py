"""When a standby that answers is still unhealthy: it does not stream, does not replay, or
lags too far. `exapg status`/`health` and the management API judge with these rules.

The lag thresholds are the warning thresholds of the alert rules
(monitoring/prometheus/rules/exapg-alerts.yml), and tests/unit/test_standby_health.py
checks that the rule files use these very numbers: a standby the alerts warn about is one
`exapg health` fails on. The checks are instantaneous; the alerts also wait their `for:`
duration before firing, so a spike shows here first. The replication exporter's health
score (docs/exporter.md) deducts for the same conditions, in tiers.
"""

from __future__ import annotations

MiB = 1024**2

LAG_BYTES_WARNING = 100 * MiB  # alert ReplicationLagBytesHigh
LAG_BYTES_CRITICAL = 1024 * MiB  # alert ReplicationLagBytesCritical
LAG_SECONDS_WARNING = 30.0  # alert ReplicationLagSecondsHigh
LAG_SECONDS_CRITICAL = 300.0  # alert ReplicationLagSecondsCritical

# Alert name -> the number its expression compares with (checked against the rule files).
ALERT_THRESHOLDS = {
    "ReplicationLagBytesHigh": LAG_BYTES_WARNING,
    "ReplicationLagBytesCritical": LAG_BYTES_CRITICAL,
    "ReplicationLagSecondsHigh": LAG_SECONDS_WARNING,
    "ReplicationLagSecondsCritical": LAG_SECONDS_CRITICAL,
}


def standby_problems(
    *, primary: str, in_recovery: bool, receiver_status: str | None, replay_paused: bool | None,
    lag_bytes: float | None, lag_seconds: float | None,
) -> list[str]:
    """Why a standby that answers is unhealthy; empty when it is healthy. An unknown lag
    (None) is not held against it: the receiver's state says whether it follows."""
    if not in_recovery:
        return [f"not in recovery: no longer a standby of {primary} (promoted?)"]
    found = []
    if receiver_status != "streaming":
        found.append(f"not streaming from {primary} (WAL receiver: {receiver_status or 'stopped'})")
    if replay_paused:
        found.append("WAL replay is paused (SELECT pg_wal_replay_resume() resumes it)")
    if lag_bytes is not None and lag_bytes > LAG_BYTES_WARNING:
        found.append(f"{lag_bytes / MiB:.0f} MB of WAL behind (more than {LAG_BYTES_WARNING // MiB} MB)")
    if lag_seconds is not None and lag_seconds > LAG_SECONDS_WARNING:
        found.append(f"replays {lag_seconds:.0f} s late (more than {LAG_SECONDS_WARNING:.0f} s)")
    return found


def lag_text(lag_bytes: float | None, lag_seconds: float | None) -> str:
    """'lag 0.0 MB / 0 s' for a status line; unknown parts are left out."""
    parts = []
    if lag_bytes is not None:
        parts.append(f"{lag_bytes / MiB:.1f} MB")
    if lag_seconds is not None:
        parts.append(f"{lag_seconds:.0f} s")
    return f"lag {' / '.join(parts)}" if parts else ""

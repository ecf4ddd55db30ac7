"""The SQL of one collection: one statement per server, whatever its role.

Everything a scrape needs comes back as one row (replication senders and slots as JSON
arrays), so a scrape costs one round trip per server. Role-specific functions sit in
CASE branches because they raise on the wrong role (pg_current_wal_lsn() in recovery,
pg_get_wal_replay_pause_state() outside it); CASE evaluates only the branch taken.
LSNs are returned as byte offsets (lsn - '0/0'); the exporter subtracts them itself,
so a standby's lag can be measured against the primary's LSN of the same scrape.
"""

from __future__ import annotations

from functools import cache

HEARTBEAT_SCHEMA = "exapg_exporter"
HEARTBEAT_TABLE = "heartbeat"
# Written by ExaPG's switchover and failover (exapg.cluster.roles), read here: the image
# carries only this package, so the name is repeated there and a unit test compares them.
ROLE_CHANGES_TABLE = "exapg.role_changes"

_HEARTBEAT_COLUMN = """,
  (SELECT seq FROM exapg_exporter.heartbeat WHERE id = 1) AS heartbeat_seq"""

_ROLE_CHANGE_COLUMN = """,
  (SELECT json_build_object(
      'at', extract(epoch FROM c.at)::float8, 'kind', c.kind, 'from_server', c.from_server,
      'to_server', c.to_server, 'timeline', c.timeline)
   FROM exapg.role_changes c ORDER BY c.id DESC LIMIT 1) AS role_change"""

_STATE = """
SELECT
  r.in_recovery,
  ctl.system_identifier::text AS system_identifier,
  CASE WHEN r.in_recovery THEN coalesce(wr.received_tli, ck.timeline_id)
       -- the first 8 hex digits of a WAL file name are its timeline
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
  END AS timeline_id,
  CASE WHEN NOT r.in_recovery THEN (pg_current_wal_lsn() - '0/0')::float8 END AS current_lsn,
  CASE WHEN NOT r.in_recovery THEN (pg_current_wal_insert_lsn() - '0/0')::float8 END AS insert_lsn,
  (pg_last_wal_receive_lsn() - '0/0')::float8 AS receive_lsn,
  (pg_last_wal_replay_lsn() - '0/0')::float8 AS replay_lsn,
  extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replay_time,
  extract(epoch FROM clock_timestamp())::float8 AS server_time,
  CASE WHEN r.in_recovery THEN pg_get_wal_replay_pause_state() <> 'not paused' END
    AS replay_paused,
  wr.status AS receiver_status,
  extract(epoch FROM wr.last_msg_receipt_time)::float8 AS receiver_last_msg_time,
  (SELECT json_agg(json_build_object(
      'application_name', s.application_name, 'client_addr', host(s.client_addr),
      'state', s.state, 'sync_state', s.sync_state,
      'sent', (s.sent_lsn - '0/0')::float8, 'write', (s.write_lsn - '0/0')::float8,
      'flush', (s.flush_lsn - '0/0')::float8, 'replay', (s.replay_lsn - '0/0')::float8,
      'write_lag', extract(epoch FROM s.write_lag)::float8,
      'flush_lag', extract(epoch FROM s.flush_lag)::float8,
      'replay_lag', extract(epoch FROM s.replay_lag)::float8) ORDER BY s.pid)
   FROM pg_stat_replication s) AS senders,
  (SELECT json_agg(json_build_object(
      'slot_name', sl.slot_name, 'slot_type', sl.slot_type, 'active', sl.active,
      'wal_status', sl.wal_status, 'restart', (sl.restart_lsn - '0/0')::float8,
      'safe_wal_size', sl.safe_wal_size,
      'xmin_age', greatest(age(sl.xmin), age(sl.catalog_xmin))) ORDER BY sl.slot_name)
   FROM pg_replication_slots sl) AS slots,
  to_regclass('exapg_exporter.heartbeat') IS NOT NULL AS heartbeat_exists,
  -- from the catalogs, not to_regclass(): that raises without USAGE on the schema, and
  -- a monitoring role may well lack it (it then reads no record, and still the rest)
  EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'exapg' AND c.relname = 'role_changes'
            AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'))
    AS role_changes_exists{heartbeat}{role_change}
FROM (SELECT pg_is_in_recovery() AS in_recovery) r
CROSS JOIN pg_control_system() ctl
CROSS JOIN pg_control_checkpoint() ck
LEFT JOIN pg_stat_wal_receiver wr ON true
"""



@cache
def state(*, heartbeat: bool = False, role_changes: bool = False) -> str:
    """The state statement, reading the optional tables the server was last seen to have.

    The heartbeat table only exists once a primary has been written to, the role changes
    once ExaPG recorded one; naming a missing table would fail the whole statement.
    """
    return _STATE.format(heartbeat=_HEARTBEAT_COLUMN if heartbeat else "",
                         role_change=_ROLE_CHANGE_COLUMN if role_changes else "")


HEARTBEAT_SETUP = (
    "CREATE SCHEMA IF NOT EXISTS exapg_exporter",
    "CREATE TABLE IF NOT EXISTS exapg_exporter.heartbeat ("
    " id int PRIMARY KEY CHECK (id = 1),"
    " seq bigint NOT NULL,"
    " written_at timestamptz NOT NULL)",
)

HEARTBEAT_WRITE = (
    "INSERT INTO exapg_exporter.heartbeat AS h (id, seq, written_at) VALUES (1, 1, now()) "
    "ON CONFLICT (id) DO UPDATE SET seq = h.seq + 1, written_at = now() RETURNING seq"
)

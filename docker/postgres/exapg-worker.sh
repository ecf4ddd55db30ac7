#!/usr/bin/env bash
# Citus membership of this worker container, run against the coordinator.
#   exapg-worker register        add this node once (idempotent), retrying until it works
#   exapg-worker register-loop   register, then re-check every EXAPG_REGISTER_INTERVAL s
#                                (a coordinator rebuilt from scratch gets the node back)
#   exapg-worker drain           move every shard away, then remove the node (scale-down)
#   exapg-worker status          this node's row in pg_dist_node
# The node is known as CITUS_NODE_NAME (fixed workers) or the container's host name
# (replicas of the scalable service), which Docker's DNS resolves on exapg_network.
set -Eeuo pipefail

NODE_NAME=${CITUS_NODE_NAME:-$(hostname)}
NODE_PORT=${CITUS_NODE_PORT:-5432}
INTERVAL=${EXAPG_REGISTER_INTERVAL:-60}
RETRY_DELAY=${EXAPG_REGISTER_RETRY:-3}

log() { printf 'exapg-worker[%s]: %s\n' "$NODE_NAME" "$*" >&2; }

coordinator_sql() {
    psql -X -q -t -A -v ON_ERROR_STOP=1 \
        -h "${COORDINATOR_HOST:?COORDINATOR_HOST is required}" -p "${COORDINATOR_PORT:-5432}" \
        -U "${POSTGRES_USER:-postgres}" -d "${POSTGRES_DB:-postgres}" \
        -v name="$NODE_NAME" -v port="$NODE_PORT"
}

local_ready() { pg_isready -q -h 127.0.0.1 -p "$NODE_PORT"; }

register_once() {
    coordinator_sql <<'SQL'
SET statement_timeout = '60s';
SELECT citus_add_node(:'name', :port)
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodename = :'name' AND nodeport = :port);
SELECT citus_activate_node(:'name', :port)
  FROM pg_dist_node WHERE nodename = :'name' AND nodeport = :port AND NOT isactive;
SQL
}

register() {
    local attempt=1
    until local_ready && register_once >/dev/null; do
        log "not registered yet (attempt $attempt), retrying in ${RETRY_DELAY}s"
        attempt=$((attempt + 1))
        sleep "$RETRY_DELAY"
    done
    log "registered with ${COORDINATOR_HOST}:${COORDINATOR_PORT:-5432}"
}

register_loop() {
    register
    while sleep "$INTERVAL"; do
        register_once >/dev/null 2>&1 || log "coordinator unreachable; will check again"
    done
}

# citus_drain_node moves the shards (blocking until done); the placement check makes
# sure nothing is left before the node leaves the metadata.
drain() {
    coordinator_sql <<'SQL'
SELECT citus_set_node_property(:'name', :port, 'shouldhaveshards', false);
SELECT citus_drain_node(:'name', :port);
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
              WHERE n.nodename = current_setting('exapg.node_name')) THEN
    RAISE EXCEPTION 'shard placements remain on this node; not removing it';
  END IF;
END $$;
SQL
}

remove() {
    coordinator_sql <<'SQL'
SELECT citus_remove_node(:'name', :port);
SQL
}

status() {
    coordinator_sql <<'SQL'
SELECT nodeid, nodename, nodeport, isactive FROM pg_dist_node
 WHERE nodename = :'name' AND nodeport = :port;
SQL
}

case "${1:-}" in
    register) register ;;
    register-loop) register_loop ;;
    drain) PGOPTIONS="-c exapg.node_name=$NODE_NAME" drain && remove && log "drained and removed" ;;
    status) status ;;
    *) echo "usage: exapg-worker register|register-loop|drain|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Citus membership of this worker container, run against the coordinator by ExaPG's own
# Python code (exapg.cluster.register, the same as the local runtime's):
#   exapg-worker register        add this node once (idempotent), retrying until it works
#   exapg-worker register-loop   register, then re-check every EXAPG_REGISTER_INTERVAL s
#                                (a coordinator rebuilt from scratch gets the node back)
#   exapg-worker drain           move every shard away, then remove the node (scale-down)
#   exapg-worker status          this node's row in pg_dist_node (JSON)
# The node is known as CITUS_NODE_NAME (fixed workers) or the container's host name
# (replicas of the scalable service), which Docker's DNS resolves on exapg_network.
set -Eeuo pipefail

export PYTHONPATH="${EXAPG_PYTHONPATH:-/opt/exapg}${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${EXAPG_PYTHON:-python3}
register() { exec "$PYTHON" -m exapg.cluster.register register --wait-local "$@"; }

case "${1:-}" in
    register) register --timeout "${EXAPG_REGISTER_TIMEOUT:-600}" ;;
    # started by the entrypoint: retries for as long as the container runs
    register-loop) register --timeout "${EXAPG_REGISTER_TIMEOUT:-inf}" --loop "${EXAPG_REGISTER_INTERVAL:-60}" ;;
    drain | status) exec "$PYTHON" -m exapg.cluster.register "$1" ;;
    *) echo "usage: exapg-worker register|register-loop|drain|status" >&2; exit 2 ;;
esac

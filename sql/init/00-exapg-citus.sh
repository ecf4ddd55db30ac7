#!/usr/bin/env bash
# First-start initialisation (run once by docker-entrypoint.sh on an empty data dir).
# Creates the Citus extension on every node; on the coordinator also records its own
# address, so workers can reach it for metadata syncing.
set -Eeuo pipefail

psql_db() {
    psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

psql_db <<'SQL'
CREATE EXTENSION IF NOT EXISTS citus;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
-- Columnar storage is its own extension since Citus 13.2 (part of citus before).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citus_columnar') THEN
        CREATE EXTENSION IF NOT EXISTS citus_columnar;
    END IF;
END
$$;
SQL

if [[ "${CITUS_ROLE:-}" == "coordinator" ]]; then
    psql_db -v host="${CITUS_COORDINATOR_NAME:-coordinator}" -v port="${CITUS_COORDINATOR_PORT:-5432}" <<'SQL'
SELECT citus_set_coordinator_host(:'host', :port);
SQL
fi

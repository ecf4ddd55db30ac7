#!/usr/bin/env bash
# First-start initialisation (run once by the entrypoint on an empty data dir).
# pg_stat_statements on every node; Citus where the image has it: the extension on
# every node, and on the coordinator its own address, so workers can reach it for
# metadata syncing.
set -Eeuo pipefail

psql_db() {
    psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

psql_db <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL

citus=$(psql_db -A -t -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'")
if [[ "$citus" == "0" ]]; then
    echo "00-exapg-citus: this image has no Citus; the node runs as plain PostgreSQL" >&2
    exit 0
fi

psql_db <<'SQL'
CREATE EXTENSION IF NOT EXISTS citus;
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

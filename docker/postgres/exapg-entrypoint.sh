#!/usr/bin/env bash
# Entrypoint of exapg/postgres. Runs in front of the official docker-entrypoint.sh:
#   - writes the pgpass that nodes use to reach each other (never `trust`);
#   - copies a mounted TLS key to a 0600 file PostgreSQL accepts (POSTGRES_SSL=on);
#   - clones the primary once when CITUS_ROLE=standby;
#   - for CITUS_ROLE=worker, registers the node with the coordinator in the background.
# PostgreSQL runs as a child of this script, which forwards stop signals, so the
# registration loop is never a stray child of the postmaster.
set -Eeuo pipefail

RUNTIME_DIR=${EXAPG_RUNTIME_DIR:-/tmp/exapg}
PGDATA=${PGDATA:-/var/lib/postgresql/data}
: "${PGPASSFILE:=$RUNTIME_DIR/pgpass}"
export PGPASSFILE

log() { printf 'exapg-entrypoint: %s\n' "$*" >&2; }

read_password() {
    if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then
        cat -- "$POSTGRES_PASSWORD_FILE"
    else
        printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}"
    fi
}

# pgpass fields escape ':' and '\'.
write_pgpass() {
    local password user
    password=$(read_password)
    password=${password//\\/\\\\}
    password=${password//:/\\:}
    user=${POSTGRES_USER:-postgres}
    umask 077
    mkdir -p "$RUNTIME_DIR" "$(dirname -- "$PGPASSFILE")"
    printf '*:*:*:%s:%s\n' "$user" "$password" > "$PGPASSFILE"
}

tls_args() {
    [[ "${POSTGRES_SSL:-off}" == "on" ]] || return 0
    local dir="$RUNTIME_DIR/ssl"
    mkdir -p "$dir"
    install -m 0644 "${POSTGRES_SSL_CERT_FILE:?POSTGRES_SSL_CERT_FILE is required when POSTGRES_SSL=on}" "$dir/server.crt"
    install -m 0600 "${POSTGRES_SSL_KEY_FILE:?POSTGRES_SSL_KEY_FILE is required when POSTGRES_SSL=on}" "$dir/server.key"
    printf '%s\n' -c ssl=on -c "ssl_cert_file=$dir/server.crt" -c "ssl_key_file=$dir/server.key"
    if [[ -n "${POSTGRES_SSL_CA_FILE:-}" && -r "$POSTGRES_SSL_CA_FILE" ]]; then
        install -m 0644 "$POSTGRES_SSL_CA_FILE" "$dir/ca.crt"
        printf '%s\n' -c "ssl_ca_file=$dir/ca.crt"
    fi
}

clone_primary() {
    [[ "${CITUS_ROLE:-}" == "standby" && ! -s "$PGDATA/PG_VERSION" ]] || return 0
    local host=${PRIMARY_HOST:?PRIMARY_HOST is required for a standby} port=${PRIMARY_PORT:-5432}
    local slot=${EXAPG_STANDBY_SLOT:-exapg_standby1} user=${POSTGRES_USER:-postgres}
    local db=${POSTGRES_DB:-postgres}
    until pg_isready -q -h "$host" -p "$port"; do log "waiting for primary $host:$port"; sleep 2; done
    psql -X -q -h "$host" -p "$port" -U "$user" -d "$db" -v ON_ERROR_STOP=1 -v slot="$slot" <<'SQL'
SELECT pg_create_physical_replication_slot(:'slot')
 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
    log "cloning $host:$port into $PGDATA (slot $slot)"
    pg_basebackup -h "$host" -p "$port" -U "$user" -D "$PGDATA" -X stream -R -S "$slot" --checkpoint=fast
    chmod 0700 "$PGDATA"
}

main() {
    write_pgpass
    if [[ "${1:-}" != "postgres" ]]; then
        exec docker-entrypoint.sh "$@"
    fi
    shift
    local -a args=(postgres -c config_file=/etc/postgresql/postgresql.conf)
    local extra
    while IFS= read -r extra; do args+=("$extra"); done < <(tls_args)
    clone_primary
    docker-entrypoint.sh "${args[@]}" "$@" &
    local pg_pid=$!
    trap 'kill -INT "$pg_pid" 2>/dev/null || true' INT TERM
    if [[ "${CITUS_ROLE:-}" == "worker" ]]; then
        exapg-worker register-loop &
    fi
    local status=0
    while kill -0 "$pg_pid" 2>/dev/null; do
        wait "$pg_pid" && status=0 || status=$?
    done
    exit "$status"
}

# Sourced by the tests to exercise one function at a time.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi

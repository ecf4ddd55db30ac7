#!/usr/bin/env bash
# Entrypoint of exapg/postgres (Debian's PostgreSQL 15, no other entrypoint behind it):
#   - writes the pgpass that nodes use to reach each other (never `trust`);
#   - on an empty volume: initdb with SCRAM and data checksums, POSTGRES_USER with
#     POSTGRES_PASSWORD(_FILE), POSTGRES_DB, then /docker-entrypoint-initdb.d/*.sh|*.sql
#     against a temporary server that listens on no TCP port;
#     CITUS_ROLE=standby clones the primary instead;
#   - copies a mounted TLS key to a 0600 file PostgreSQL accepts (POSTGRES_SSL=on);
#   - loads Citus only when the image has it (cluster roles refuse to start without it);
#   - for CITUS_ROLE=worker, registers the node with the coordinator in the background.
# PostgreSQL runs as a child of this script, which forwards stop signals, so the
# registration loop is never a stray child of the postmaster.
set -Eeuo pipefail

RUNTIME_DIR=${EXAPG_RUNTIME_DIR:-/tmp/exapg}
PGDATA=${PGDATA:-/var/lib/postgresql/data}
CONFIG_FILE=${EXAPG_CONFIG_FILE:-/etc/postgresql/postgresql.conf}
INITDB_DIR=${EXAPG_INITDB_DIR:-/docker-entrypoint-initdb.d}
CITUS_MARKER=${EXAPG_CITUS_MARKER:-/usr/share/exapg/citus}
: "${PGPASSFILE:=$RUNTIME_DIR/pgpass}"
export PGPASSFILE PGDATA

log() { printf 'exapg-entrypoint: %s\n' "$*" >&2; }
die() { log "$1"; exit "${2:-1}"; }

read_password() {
    if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then
        cat -- "$POSTGRES_PASSWORD_FILE"
    else
        printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}"
    fi
}

# The pgpass is written by ExaPG's Python (exapg.postgres.passfile, the local runtime's
# writer too); the password goes through a pipe, never a command line.
write_pgpass() {
    local password
    password=$(read_password)
    umask 077
    mkdir -p "$RUNTIME_DIR"
    printf '%s' "$password" | PYTHONPATH="${EXAPG_PYTHONPATH:-/opt/exapg}" "${EXAPG_PYTHON:-python3}" \
        -m exapg.postgres.passfile "$PGPASSFILE" "${POSTGRES_USER:-postgres}"
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

# POSTGRES_SSL_REQUIRE=on (docker-compose.security.yml): clients from outside the stack
# must use TLS. Plain connections stay open to the stack's own network (EXAPG_NETWORK:
# exporters, pgBouncer) and to the container itself (health checks), but not from the
# network's gateway, which is where clients of the published ports come from.
hba_args() {
    [[ "${POSTGRES_SSL:-off}" == "on" && "${POSTGRES_SSL_REQUIRE:-off}" == "on" ]] || return 0
    local hba="$RUNTIME_DIR/pg_hba.conf" network=${EXAPG_NETWORK:?EXAPG_NETWORK is required with POSTGRES_SSL_REQUIRE=on}
    local gateway=${EXAPG_GATEWAY:?EXAPG_GATEWAY is required with POSTGRES_SSL_REQUIRE=on}
    # ExaPG's pg_hba renderer (exapg.postgres.conf.render_hba), as for config/postgresql.
    (umask 077; PYTHONPATH="${EXAPG_PYTHONPATH:-/opt/exapg}" "${EXAPG_PYTHON:-python3}" \
        -m exapg.postgres.conf tls-hba "$network" "$gateway" > "$hba") \
        || die "cannot write $hba, which POSTGRES_SSL_REQUIRE=on needs"
    printf '%s\n' -c "hba_file=$hba"
}

has_citus() { [[ -r "$CITUS_MARKER" && "$(cat "$CITUS_MARKER")" != none ]]; }

# The configuration preloads Citus. An image built without it runs without it (the
# preload list without citus), except for a node whose role needs it: a worker stops
# here with the reason (exit 4).
require_citus() {
    has_citus || [[ "${CITUS_ROLE:-}" != worker ]] \
        || die "this image was built without Citus, which a worker needs: rebuild it with a Citus source (exapg images build --citus-source DIR; see docs/docker.md)" 4
}

citus_args() {
    has_citus && return 0
    local preload
    preload=$(sed -n "s/^[[:space:]]*shared_preload_libraries[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$CONFIG_FILE" | tail -n 1)
    preload=$(tr ',' '\n' <<<"$preload" | tr -d ' ' | grep -v -x -e citus -e '' | paste -sd, - || true)
    printf '%s\n' -c "shared_preload_libraries=${preload}"
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

# A cluster in PGDATA, made once. The password goes through a 0600 file, never argv.
init_cluster() {
    [[ -s "$PGDATA/PG_VERSION" ]] && return 0
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    local pwfile="$RUNTIME_DIR/initdb-pw"
    (umask 077; read_password > "$pwfile")
    local -a extra=()
    # shellcheck disable=SC2206 # POSTGRES_INITDB_ARGS is a word list, as in the official image
    extra=(${POSTGRES_INITDB_ARGS:-})
    log "initialising $PGDATA"
    initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --auth=scram-sha-256 \
        --data-checksums --encoding=UTF8 --locale=C.UTF-8 "${extra[@]}" >/dev/null
    rm -f -- "$pwfile"
    first_start "$@"
}

# The temporary server: socket only, in the runtime dir, so no client (and no
# health check) sees the node before the real server starts.
first_start() {
    local socket="$RUNTIME_DIR/init-socket"
    mkdir -p "$socket"
    pg_ctl -D "$PGDATA" -w -t 120 -l "$RUNTIME_DIR/init.log" -o "$(printf '%q ' "$@" \
        -c listen_addresses= -c "unix_socket_directories=$socket")" start >/dev/null \
        || { cat "$RUNTIME_DIR/init.log" >&2; die "the first start of PostgreSQL failed"; }
    local -a psql_base=(psql -X -q -v ON_ERROR_STOP=1 -h "$socket" -U "${POSTGRES_USER:-postgres}")
    local db=${POSTGRES_DB:-${POSTGRES_USER:-postgres}}
    if [[ "$db" != postgres ]]; then
        "${psql_base[@]}" -d postgres -v db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
    fi
    local script
    for script in "$INITDB_DIR"/*; do
        case "$script" in
            *.sh) log "running $script"; PGHOST="$socket" POSTGRES_DB="$db" bash "$script" ;;
            *.sql) log "running $script"; "${psql_base[@]}" -d "$db" -f "$script" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w -t 120 stop >/dev/null
}

main() {
    write_pgpass
    if [[ "${1:-}" != "postgres" ]]; then
        exec "$@"
    fi
    shift
    require_citus
    local -a args=(-c "config_file=$CONFIG_FILE")
    local extra
    while IFS= read -r extra; do args+=("$extra"); done < <(citus_args)
    while IFS= read -r extra; do args+=("$extra"); done < <(tls_args)
    # Not through a pipe: a failure to write the TLS-only pg_hba.conf must stop the start.
    local hba
    hba=$(hba_args)
    [[ -z "$hba" ]] || while IFS= read -r extra; do args+=("$extra"); done <<<"$hba"
    clone_primary
    init_cluster "${args[@]}" "$@"
    postgres "${args[@]}" "$@" &
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

#!/usr/bin/env bash
# Entrypoint of exapg/pgbouncer: render the configuration from the environment, then
# run pgBouncer in the foreground as the unprivileged user the image sets.
set -Eeuo pipefail

TEMPLATE=${PGBOUNCER_TEMPLATE:-/etc/pgbouncer/pgbouncer.ini.template}
OUT=${PGBOUNCER_RUNTIME_DIR:-/tmp/pgbouncer}

require() { [[ -n "${!1:-}" ]] || { echo "exapg-pgbouncer: $1 is required" >&2; exit 5; }; }

password() {
    if [[ -n "${DATABASES_PASSWORD_FILE:-}" ]]; then cat -- "$DATABASES_PASSWORD_FILE"; else printf '%s' "$DATABASES_PASSWORD"; fi
}

# Values go into an ini file: refuse anything that could start a new line or setting.
check_value() {
    [[ "${!1}" =~ ^[A-Za-z0-9_.:-]+$ ]] || { echo "exapg-pgbouncer: $1 has characters not allowed here" >&2; exit 5; }
}

render() {
    local text name
    text=$(<"$TEMPLATE")
    for name in DATABASES_HOST DATABASES_PORT DATABASES_USER DATABASES_DBNAME POOL_MODE MAX_CLIENT_CONN DEFAULT_POOL_SIZE; do
        check_value "$name"
        text=${text//@${name}@/${!name}}
    done
    printf '%s\n' "$text"
}

main() {
    : "${DATABASES_PORT:=5432}" "${DATABASES_USER:=postgres}" "${POOL_MODE:=transaction}"
    : "${MAX_CLIENT_CONN:=100}" "${DEFAULT_POOL_SIZE:=20}"
    require DATABASES_HOST
    require DATABASES_DBNAME
    [[ -n "${DATABASES_PASSWORD:-}${DATABASES_PASSWORD_FILE:-}" ]] || require DATABASES_PASSWORD
    umask 077
    mkdir -p "$OUT"
    render > "$OUT/pgbouncer.ini"
    local secret
    secret=$(password)
    secret=${secret//\"/\"\"}
    printf '"%s" "%s"\n' "$DATABASES_USER" "$secret" > "$OUT/userlist.txt"
    exec pgbouncer "$OUT/pgbouncer.ini"
}

main "$@"

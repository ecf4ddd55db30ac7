#!/usr/bin/env bash
# Builder stage of exapg/postgres: compile Citus against the image's PostgreSQL and
# install it under DEST (the runtime stage copies DEST/ to /).
#   build-citus MODE VERSION LOCAL_TREE DEST
# MODE: auto (the local tree if it holds Citus, else the release archive), local,
# release, none. Without a source the image is built without Citus (DEST stays empty),
# and says so in /usr/share/exapg/citus.
set -Eeuo pipefail

mode=$1 version=$2 local_tree=$3 dest=$4
archive="https://github.com/citusdata/citus/archive/refs/tags/v${version}.tar.gz"
release=${CITUS_RELEASE_DIR:-/src/release}  # where the archive is unpacked
mkdir -p "$dest/usr/share/exapg"

log() { printf 'build-citus: %s\n' "$*" >&2; }

# Prints the unpacked tree, or nothing: called as `from_release || ...`, where bash ignores
# `set -e`, so each failure is checked here.
from_release() {
    mkdir -p "$release"
    if curl -fsSL --retry 2 --connect-timeout 15 "$archive" | tar -xz -C "$release" --strip-components=1 \
        && [[ -x "$release/configure" ]]; then
        echo "$release"
    else
        return 1
    fi
}

pick_source() {
    if [[ "$mode" != release && -x "$local_tree/configure" ]]; then
        echo "$local_tree"
    elif [[ "$mode" == release || "$mode" == auto ]]; then
        from_release || { log "Citus ${version} could not be downloaded from ${archive}"; true; }
    fi
}

main() {
    [[ "$mode" == none ]] && { echo "none" > "$dest/usr/share/exapg/citus"; return 0; }
    local src
    src=$(pick_source)
    if [[ -z "$src" ]]; then
        [[ "$mode" == auto ]] || { log "no Citus source for CITUS_SOURCE=$mode"; exit 1; }
        log "no Citus source: building the image without Citus"
        echo "none" > "$dest/usr/share/exapg/citus"
        return 0
    fi
    cd "$src"
    # No telemetry (libcurl), no LLVM bitcode: what ships is the shared library.
    ./configure --without-libcurl >/dev/null
    make -j"$(nproc)" with_llvm=no >/dev/null
    make install DESTDIR="$dest" with_llvm=no >/dev/null
    sed -n 's/^AC_INIT(\[Citus\], \[\(.*\)\])$/\1/p' configure.ac > "$dest/usr/share/exapg/citus"
    log "Citus $(cat "$dest/usr/share/exapg/citus") built from $src"
}

main

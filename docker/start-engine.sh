#!/usr/bin/env bash
# Start a Docker engine for ExaPG's Docker runtime and its tests, when none answers.
# As root: install Debian's docker.io if no dockerd exists, then start dockerd (systemd
# where it runs, else in the background, Unix socket only, log in /var/log/exapg-dockerd.log).
# Without root and without an engine: say so and exit 0 (the Docker tests then skip).
set -Eeuo pipefail

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }
say() { printf 'docker engine: %s\n' "$*"; }

if command -v docker >/dev/null && engine_answers; then
    say "running"
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    say "none reachable and not root: the Docker tests will skip"
    exit 0
fi
if ! command -v dockerd >/dev/null; then
    say "installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if [[ -d /run/systemd/system ]]; then
    systemctl start docker
else
    log=/var/log/exapg-dockerd.log
    # a dockerd that died without cleaning up (killed, or its machine paused) leaves its pid
    # file behind, and a new dockerd refuses to start while it is there (a zombie counts as dead)
    pidfile=/var/run/docker.pid
    if [[ -f "$pidfile" ]]; then
        pid=$(tr -dc '0-9' <"$pidfile" || true)
        state=$(awk '/^State:/ {print $2}' "/proc/${pid:-0}/status" 2>/dev/null || true)
        if [[ -z "$pid" || "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != dockerd || "$state" == Z ]]; then
            say "removing the stale $pidfile (pid ${pid:-none} is no running dockerd)"
            rm -f "$pidfile"
            # the containerd that dockerd ran outlives it, and the new dockerd times out
            # starting its own: stop the orphan (containers keep running under their shims)
            orphan=$(tr -dc '0-9' </var/run/docker/containerd/containerd.pid 2>/dev/null || true)
            if [[ -n "$orphan" && "$(cat "/proc/$orphan/comm" 2>/dev/null || true)" == containerd ]]; then
                say "stopping the orphaned containerd (pid $orphan) the dead dockerd left"
                kill "$orphan" 2>/dev/null || true
                for _ in $(seq 20); do kill -0 "$orphan" 2>/dev/null || break; sleep 0.5; done
                kill -9 "$orphan" 2>/dev/null || true
            fi
        fi
    fi
    say "starting dockerd (log: $log)"
    setsid dockerd --host=unix:///var/run/docker.sock >>"$log" 2>&1 < /dev/null &
fi
for _ in $(seq 60); do
    engine_answers && { say "running"; exit 0; }
    sleep 1
done
say "dockerd did not answer within 60 s (see /var/log/exapg-dockerd.log)"
exit 4

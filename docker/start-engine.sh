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
    say "starting dockerd (log: $log)"
    setsid dockerd --host=unix:///var/run/docker.sock >>"$log" 2>&1 < /dev/null &
fi
for _ in $(seq 60); do
    engine_answers && { say "running"; exit 0; }
    sleep 1
done
say "dockerd did not answer within 60 s (see /var/log/exapg-dockerd.log)"
exit 4

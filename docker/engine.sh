#!/usr/bin/env bash
# Make sure a Docker engine is reachable. Idempotent.
#   exit 0: `docker info` works (already running, or started here)
#   exit 1: no engine and none can be started; the reason is printed on stderr
# The engine is started the way this project's tests need it on a bare
# Debian 12 machine or inside a CI container: vfs storage (works on any
# filesystem, including overlay-on-overlay), no iptables and no default
# bridge (tests use host networking only).
set -u

LOG="${RELAYBOX_DOCKERD_LOG:-/var/log/relaybox-dockerd.log}"
TIMEOUT="${RELAYBOX_DOCKERD_TIMEOUT:-60}"

fail() { echo "docker/engine.sh: $*" >&2; exit 1; }

if ! command -v docker >/dev/null 2>&1; then
  fail "no docker CLI installed (apt-get install docker.io)"
fi
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  fail "docker CLI present but no engine reachable and no dockerd binary to start one"
fi
if [ "$(id -u)" != 0 ]; then
  fail "no engine reachable and not root, so dockerd cannot be started here"
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  fail "DOCKER_HOST=$DOCKER_HOST is set but unreachable; not starting a local dockerd"
fi

# A dockerd of ours may already be starting (e.g. a concurrent call).
if ! pgrep -x dockerd >/dev/null 2>&1; then
  mkdir -p "$(dirname "$LOG")" 2>/dev/null || LOG=/tmp/relaybox-dockerd.log
  echo "docker/engine.sh: starting dockerd (log: $LOG)" >&2
  nohup dockerd --storage-driver=vfs --iptables=false --bridge=none \
    >>"$LOG" 2>&1 </dev/null &
  echo $! >/run/relaybox-dockerd.pid 2>/dev/null || true
fi

for _ in $(seq 1 "$TIMEOUT"); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker/engine.sh: last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2 2>/dev/null || true
fail "dockerd did not become ready within ${TIMEOUT}s"

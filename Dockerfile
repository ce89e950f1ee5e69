# relaybox: Postfix + Dovecot (SASL, IMAP) from Debian 12 under a Node 24
# TypeScript supervisor.
#
#   docker build -t relaybox:local .
#
# Without access to a container registry, first create the base image
# locally with docker/base-image.sh, and build with the legacy builder on the
# host network (it uses the local base image without pulling):
#   bash docker/base-image.sh
#   DOCKER_BUILDKIT=0 docker build --network host -t relaybox:local .
# Where npm inside a container cannot reach the registry, point the build at
# a mirror on the host: --build-arg NPM_CONFIG_REGISTRY=$(bash docker/npm-mirror.sh)

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------- build ----
FROM ${NODE_IMAGE} AS build
# npm reads NPM_CONFIG_REGISTRY from the environment; build args are in the
# environment of RUN steps. Not carried into the runtime stage.
ARG NPM_CONFIG_REGISTRY=https://registry.npmjs.org/
ENV NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev \
 && find node_modules -depth -type d -empty -delete \
 && rm -rf /root/.npm

# -------------------------------------------------------------- runtime ----
FROM ${NODE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive

# Debian packages only; no docs, man pages or translations.
# Postfix is preseeded to "No configuration": relaybox renders its own config
# into STATE_DIR at every start.
RUN printf '%s\n' \
      'path-exclude=/usr/share/doc/*' \
      'path-include=/usr/share/doc/*/copyright' \
      'path-exclude=/usr/share/man/*' \
      'path-exclude=/usr/share/info/*' \
      'path-exclude=/usr/share/locale/*' \
      'path-exclude=/usr/share/lintian/*' \
      > /etc/dpkg/dpkg.cfg.d/01-relaybox-nodoc \
 && echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      postfix dovecot-core dovecot-imapd dovecot-lmtpd tini openssl ca-certificates \
      libsasl2-modules opendkim rspamd unbound dns-root-data \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt/* /var/log/dpkg.log \
 # Key pairs generated at package install time would be identical in every
 # copy of this image: drop them. relaybox makes its own per-installation
 # certificate in STATE_DIR/tls (or uses TLS_CERT_FILE/TLS_KEY_FILE).
 && rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem \
          /etc/dovecot/private/dovecot.key /etc/dovecot/private/dovecot.pem \
 # The supervisor delivers mail to local mailboxes as this user. A fixed id
 # keeps the mailboxes in the volume readable across image rebuilds.
 && groupadd --system --gid 5000 vmail \
 && useradd --system --uid 5000 --gid vmail --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin vmail

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY docker/rootfs/ /
COPY docker/rspamd-cache.sh /tmp/rspamd-cache.sh
# V8's compiled code of the modules relaybox loads, kept here (made at build time, below).
ENV NODE_COMPILE_CACHE=/var/cache/relaybox/node

# rspamd compiles the public-suffix list into its hyperscan cache on a first start (~11 s): do it
# here, once; relaybox seeds STATE_DIR with it (it is recompiled there if the CPU differs).
RUN bash /tmp/rspamd-cache.sh /var/cache/relaybox/rspamd-hs && rm /tmp/rspamd-cache.sh
# Every module `relaybox run` loads, compiled once here (the root filesystem is read-only at run
# time): ~30 ms off each start.
RUN node --input-type=module -e "for (const m of ['cli', 'config/load', 'log', 'app', 'http/server', 'selftest/selftest', 'config/reload', 'metrics/metrics', 'host/command']) await import('/app/dist/' + m + '.js').catch(() => {}); await import('execa');" \
 && ls /var/cache/relaybox/node

ENV NODE_ENV=production \
    STATE_DIR=/var/lib/relaybox
RUN mkdir -p /var/lib/relaybox
VOLUME /var/lib/relaybox

# SMTP, submissions (implicit TLS), submission (STARTTLS), IMAP, IMAPS, HTTP
EXPOSE 25 465 587 143 993 8080
STOPSIGNAL SIGTERM
# GET /health on PORT_HTTP via node (there is no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["relaybox-healthcheck"]
# tini reaps zombies and forwards SIGTERM to the supervisor, which stops
# Postfix and Dovecot cleanly.
ENTRYPOINT ["tini", "--"]
CMD ["relaybox", "run"]

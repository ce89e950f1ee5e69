// Pure renderer: Config -> a private rspamd configuration: one milter proxy that scans by itself
// (no controller, no fuzzy, no Redis), nothing fetched from the Internet, Debian's module defaults.
import type { StatePaths } from './paths.ts';
import type { RenderInput, RenderedFile } from './types.ts';

const HEADER = '# Rendered by relaybox from the environment at every start; edits here are overwritten.\n';

/** Modules that fetch from the Internet, need Redis, or sign (OpenDKIM signs): off. */
const DISABLED = ['asn', 'rbl', 'rspamd_update', 'phishing', 'url_redirector', 'multimap', 'dkim_signing', 'greylist', 'ratelimit', 'neural', 'replies', 'history_redis', 'reputation', 'clickhouse', 'elastic', 'metadata_exporter'];

function topLevel(paths: StatePaths): string {
  return `${HEADER}# Debian's common.conf without statistic.conf (Bayes needs Redis).
lua = "$RULESDIR/rspamd.lua";
.include "$CONFDIR/metrics.conf"
.include "$CONFDIR/actions.conf"
.include "$CONFDIR/groups.conf"
.include "$CONFDIR/composites.conf"
.include "$CONFDIR/modules.conf"
.include "$CONFDIR/settings.conf"
modules {
  path = "\${PLUGINSDIR}";
  fallback_path = "\${SHAREDIR}/lua";
}
options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
  type = "console";
  systemd = true;
  .include "$CONFDIR/logging.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/logging.inc"
}
worker "rspamd_proxy" {
  bind_socket = "${paths.rspamdSocket} mode=0660 owner=_rspamd group=postfix";
  .include "$CONFDIR/worker-proxy.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/worker-proxy.inc"
}
`;
}

function options({ config }: RenderInput, paths: StatePaths): string {
  const servers = config.dnsServers.map(({ address, port }) => `"${address.includes(':') ? `[${address}]` : address}:${port}"`);
  return `${HEADER}# No fuzzy_check: it resolves rspamd.com's fuzzy servers while loading the configuration.
filters = "chartable,dkim,regexp";
hs_cache_dir = "${paths.rspamdDb}/hs";
# Clients on loopback and private networks count as local and would skip SPF and DMARC; behind a
# container's port forwarding every client looks private. Trusted clients never reach rspamd.
check_local = true;
dns {
  timeout = 1s;
  retransmits = 2;
${servers.length > 0 ? `  nameserver = [${servers.join(', ')}];\n` : ''}}
`;
}

export function renderRspamd(input: RenderInput, paths: StatePaths): RenderedFile[] {
  const filter = input.config.filter;
  if (!filter) return [];
  const local = (name: string, content: string): RenderedFile => ({ path: `${paths.rspamd}/local.d/${name}`, content: `${HEADER}${content}`, mode: 0o644 });
  return [
    { path: paths.rspamdConf, content: topLevel(paths), mode: 0o644 },
    { path: `${paths.rspamd}/local.d/options.inc`, content: options(input, paths), mode: 0o644 },
    local('logging.inc', 'level = "notice";\n'),
    local('actions.conf', `add_header = ${filter.headerScore};\nreject = ${filter.rejectScore};\ngreylist = null;\nrewrite_subject = null;\n`),
    // A failing DMARC policy forces its action instead of only adding to the score.
    local('dmarc.conf', 'actions {\n  reject = "reject";\n  quarantine = "add_header";\n}\n'),
    local('milter_headers.conf', 'use = ["authentication-results", "x-spamd-result", "x-spam-status"];\nskip_local = false;\nskip_authenticated = true;\nextended_spam_headers = false;\n'),
    local('worker-proxy.inc', 'milter = yes;\nself_scan = yes;\ncount = 1;\ntimeout = 120s;\nupstream "local" { default = yes; self_scan = yes; }\nreject_message = "Spam message rejected";\nspam_header = "X-Spam";\n'),
    ...DISABLED.map((module) => local(`${module}.conf`, 'enabled = false;\n')),
  ];
}

// unbound: the DNSSEC-validating resolver Postfix asks on direct delivery (DANE needs answers with the
// AD bit from a resolver it trusts: on loopback, so nobody on the path can forge the bit).
import type { StatePaths } from './paths.ts';
import type { RenderInput, RenderedFile } from './types.ts';

const quote = (value: string) => `"${value.replaceAll('"', '')}"`;

/** The root's key from dns-root-data (world-readable), or DNSSEC_TRUST_ANCHOR_FILE's records copied where unbound's user reads them. */
function anchorFile({ config }: RenderInput, paths: StatePaths): string {
  const anchor = config.resolver!.trustAnchor;
  return anchor.records === undefined ? anchor.file : paths.unboundAnchor;
}

export function renderUnboundConf(input: RenderInput, paths: StatePaths): string {
  const { config } = input;
  const resolver = config.resolver!;
  const forwarders = config.dnsServers.map(({ address, port }) => `  forward-addr: ${address}@${port}`);
  const loopbackForwarder = config.dnsServers.some(({ address }) => address.startsWith('127.') || address === '::1');
  return [
    '# Rendered by relaybox; changes are overwritten at every start.',
    'server:',
    `  interface: ${resolver.address}@53`,
    '  do-daemonize: no',
    // Started as root, it drops to Debian's unbound user once port 53 is bound.
    `  username: ${quote('unbound')}`,
    `  chroot: ""`,
    `  directory: ${quote(paths.unbound)}`,
    `  pidfile: ${quote(paths.unboundPid)}`,
    '  use-syslog: no',
    '  logfile: ""',
    '  log-time-ascii: no',
    '  verbosity: 1',
    // Why an answer failed validation (bogus), one line each: how a broken TLSA chain shows in the log.
    '  val-log-level: 2',
    '  log-servfail: yes',
    '  num-threads: 1',
    '  so-reuseport: no',
    '  access-control: 127.0.0.0/8 allow',
    '  module-config: "validator iterator"',
    `  trust-anchor-file: ${quote(anchorFile(input, paths))}`,
    '  trust-anchor-signaling: no',
    '  root-key-sentinel: no',
    '  harden-dnssec-stripped: yes',
    '  harden-below-nxdomain: yes',
    '  qname-minimisation: yes',
    '  hide-identity: yes',
    '  hide-version: yes',
    // The cache lives in memory only: a restart forgets it, nothing stale survives on disk.
    '  msg-cache-size: 8m',
    '  rrset-cache-size: 16m',
    '  key-cache-size: 4m',
    ...(loopbackForwarder ? ['  do-not-query-localhost: no'] : []),
    // `test.` (RFC 6761) is answered by the configured servers rather than refused locally.
    ...(forwarders.length > 0 ? ['  local-zone: "test." nodefault'] : []),
    'remote-control:',
    '  control-enable: no',
    ...(forwarders.length > 0 ? ['forward-zone:', '  name: "."', ...forwarders] : []),
    '',
  ].join('\n');
}

export function renderUnbound(input: RenderInput, paths: StatePaths): RenderedFile[] {
  if (!input.config.resolver || input.config.role === 'mailbox') return [];
  const anchor = input.config.resolver.trustAnchor;
  return [
    { path: paths.unboundConf, content: renderUnboundConf(input, paths), mode: 0o644 },
    ...(anchor.records === undefined ? [] : [{ path: paths.unboundAnchor, content: anchor.records, mode: 0o644 }]),
  ];
}

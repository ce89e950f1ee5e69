// Postfix's chrooted smtp reads queue/etc/resolv.conf. With relaybox's validating resolver it points
// there, trusting the AD bit (glibc may clear it otherwise, and Postfix would see no DNSSEC: no DANE).
// Without it, DNS_SERVERS on port 53 go there (glibc's resolver knows no other port); otherwise the
// host's file is copied at start.
import type { StatePaths } from './paths.ts';
import type { RenderInput, RenderedFile } from './types.ts';

const TRUST_AD = 'options trust-ad edns0\n';

export function renderChrootResolver({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  if (config.resolver && config.role !== 'mailbox') {
    return [{ path: paths.chrootResolvConf, content: `# Rendered by relaybox: its validating resolver (RESOLVER=unbound).\nnameserver ${config.resolver.address}\n${TRUST_AD}`, mode: 0o644 }];
  }
  const servers = config.dnsServers.filter((server) => server.port === 53).slice(0, 3);
  if (servers.length === 0) return [];
  // OUTBOUND_TLS=dane with RESOLVER=system: the operator vouches that these servers validate.
  const trust = config.outbound.level === 'dane' ? TRUST_AD : '';
  return [{ path: paths.chrootResolvConf, content: `# Rendered by relaybox from DNS_SERVERS.\n${servers.map((s) => `nameserver ${s.address}\n`).join('')}${trust}`, mode: 0o644 }];
}

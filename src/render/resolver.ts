// Postfix's chrooted smtp reads queue/etc/resolv.conf. With DNS_SERVERS, the servers on port 53 go
// there (glibc's resolver knows no other port); otherwise the host's file is copied at start.
import type { StatePaths } from './paths.ts';
import type { RenderInput, RenderedFile } from './types.ts';

export function renderChrootResolver({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  const servers = config.dnsServers.filter((server) => server.port === 53).slice(0, 3);
  if (servers.length === 0) return [];
  return [{ path: paths.chrootResolvConf, content: `# Rendered by relaybox from DNS_SERVERS.\n${servers.map((s) => `nameserver ${s.address}\n`).join('')}`, mode: 0o644 }];
}

// The supervisor's SRS lookup service for Postfix: `forward` (cleanup-inbound's sender_canonical_maps:
// a forwarded message's foreign envelope sender becomes an SRS0 address at MAIL_HOSTNAME) and `reverse`
// (virtual_alias_maps: a bounce to a valid SRS0 address goes back to the original sender; a forged or
// stale one is unknown, refused at RCPT). The HMAC key is made once in STATE_DIR (0600, root's).
// Not Debian's postsrsd: it serves TCP only, where any local user could have it sign addresses.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { userIds } from '../host/accounts.ts';
import { probeSocketmap, SocketmapServer } from '../protocol/socketmap.ts';
import type { ServiceCheck } from '../supervision/checks.ts';
import { Srs } from './srs.ts';

/** The key from its file (first line, as postsrsd reads it), made on first use. */
export function srsSecret(path: string): string {
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(24).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  const secret = readFileSync(path, 'utf8').split('\n')[0]?.trim() ?? '';
  if (secret.length < 16) throw new Error(`${path} holds no SRS key (a line of at least 16 characters); remove it and relaybox makes a new one`);
  return secret;
}

/** Which senders a forwarded message keeps: none, our own domains, our host name, our SRS addresses. */
export function srsLookup(srs: Srs, ownDomains: string[]): (map: string, key: string) => string | undefined {
  const own = new Set([...ownDomains, srs.domain].map((d) => d.toLowerCase()));
  return (map, key) => {
    if (map === 'reverse') return srs.reverse(key);
    if (map !== 'forward') return undefined;
    const at = key.lastIndexOf('@');
    if (at <= 0 || own.has(key.slice(at + 1).toLowerCase()) || srs.isOurs(key)) return undefined;
    return srs.forward(key);
  };
}

export class SrsService {
  private readonly server: SocketmapServer;
  private readonly socketPath: string;

  constructor(options: { socketPath: string; secretPath: string; hostname: string; domains: string[]; log: Logger }) {
    const srs = new Srs({ secret: srsSecret(options.secretPath), domain: options.hostname });
    this.socketPath = options.socketPath;
    const lookup = srsLookup(srs, options.domains);
    this.server = new SocketmapServer({
      socketPath: options.socketPath,
      owner: userIds('postfix'),
      lookup: (map, key) => {
        const value = lookup(map, key);
        return value === undefined ? { notFound: true } : { found: value };
      },
      log: options.log,
      name: 'srs',
    });
  }

  start(): Promise<void> {
    return this.server.start();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  /** Counts for /ready (cleanup and smtpd ask it while SRS is on); listens afresh when it keeps failing. */
  check(): ServiceCheck {
    return { name: 'srs', run: () => probeSocketmap(this.socketPath, 'reverse'), recover: () => this.server.restart() };
  }
}

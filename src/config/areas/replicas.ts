// More than one machine: which part of relaybox this replica runs (ROLE), where the shared state
// lives (Redis), how the relay replicas reach the mailbox replica (LMTP) and each other (the handoff
// of a stopping replica's queue). Whatever a replica must not invent on its own (certificate, DKIM
// keys, accounts) is required from files in the split roles.
import { isIP } from 'node:net';
import { z } from 'zod';
import { LISTENERS, ROLES, type Ports, type Role } from '../../listeners.ts';
import { envDocs, integer, secretFile, text } from '../fields.ts';
import { passwordProblem } from '../outbound-values.ts';
import { parseDomain, splitList, type Parsed } from '../values.ts';
import { eitherOr, type Issue, type Values } from './area.ts';

const SPLIT = 'ROLE=relay and ROLE=mailbox';

export interface ServiceAddress {
  host: string;
  port: number;
}

/** `host:port` or `host` (a name of one or more labels, as Kubernetes Services have, or an IP; IPv6 in brackets). */
export function parseServiceAddress(raw: string, defaultPort: number): Parsed<ServiceAddress> {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(raw.trim());
  const expected = `host:port, e.g. relaybox-mailbox-lmtp:${defaultPort} or 10.0.0.7:${defaultPort}`;
  if (!match) return { ok: false, message: expected };
  const host = (match[1] ?? match[2] ?? '').toLowerCase();
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  const name = isIP(host) !== 0 || host.split('.').every((label) => /^(?!-)[a-z0-9-]{1,63}(?<!-)$/.test(label)) || parseDomain(host).ok;
  if (!name || (match[1] !== undefined && isIP(host) !== 6)) return { ok: false, message: `${expected}; "${host}" is not a host name or IP address` };
  if (port < 1 || port > 65535) return { ok: false, message: `${expected}; the port must be 1-65535` };
  return { ok: true, value: { host, port } };
}

export interface RedisTarget {
  /** The URL as given (secret: it may hold a password). */
  url: string;
  /** A unix socket path (`unix:///path`), instead of host and port. */
  socketPath?: string;
}

/** `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS) or `unix:///path/to/socket`. */
export function parseRedisUrl(raw: string): Parsed<RedisTarget> {
  const expected = 'redis://[:password@]host:port[/db], rediss://... for TLS, or unix:///path/to/redis.sock';
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return { ok: false, message: `not a URL; ${expected}` };
  }
  if (url.protocol === 'unix:') return url.pathname.startsWith('/') && url.pathname.length > 1 ? { ok: true, value: { url: raw.trim(), socketPath: url.pathname } } : { ok: false, message: expected };
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return { ok: false, message: `the scheme must be redis:, rediss: or unix:; ${expected}` };
  if (url.hostname === '') return { ok: false, message: `no host; ${expected}` };
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) return { ok: false, message: `the path must be a database number such as /0; ${expected}` };
  return { ok: true, value: { url: raw.trim() } };
}

const seconds = (fallback: string, description: string) => integer({ group: 'Replicas', default: fallback, description }, 1, 600, 'seconds');

export const variables = {
  ROLE: z
    .enum(ROLES, { error: ROLES.join(', ') })
    .default('all')
    .register(envDocs, {
      group: 'Replicas',
      default: 'all',
      description:
        "`all`: everything in one box (relaying, mailboxes, IMAP). `relay`: submission (587, 465), inbound SMTP (25) and relaying, SASL through a Dovecot that only authenticates, DKIM signing; mail for MAIL_DOMAINS goes to MAILBOX_LMTP_HOST; several may run side by side. `mailbox`: the Maildirs on this replica's volume, LMTP (PORT_LMTP) from the relays and IMAP (143, 993); one replica. In `relay` and `mailbox` the certificate, DKIM keys and accounts must come from files (README, \"More than one machine\").",
    }),
  MAILBOX_LMTP_HOST: text({ group: 'Replicas', description: "`host:port` of the mailbox replica's LMTP listener (PORT_LMTP, default port 24), e.g. `relaybox-mailbox-lmtp:24`. Required in ROLE=relay with MAIL_DOMAINS. Delivered over STARTTLS with the mailbox's certificate pinned to TLS_CERT_FILE's public key (every replica shares it)." }).transform((raw, ctx) => {
    if (raw.trim() === '') return undefined;
    const parsed = parseServiceAddress(raw, 24);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message, input: raw });
    return parsed.ok ? parsed.value : z.NEVER;
  }),
  REDIS_URL: text({ group: 'Replicas', description: 'The Redis (or Valkey, or any Redis-compatible) server every replica shares bans, per-user sending counters and suspensions through: `redis://[:password@]host:port[/db]`, `rediss://...` (TLS) or `unix:///path`. Required in ROLE=relay unless SINGLE_RELAY=yes. Unreachable: sending limits answer 451 (never "no limit") and /ready lists `redis` as degraded. Empty = kept in STATE_DIR.', secret: true }),
  REDIS_URL_FILE: secretFile({ group: 'Replicas', description: 'File holding REDIS_URL (a Docker or Kubernetes secret).' }),
  SINGLE_RELAY: z
    .enum(['no', 'yes'], { error: 'no or yes' })
    .default('no')
    .register(envDocs, { group: 'Replicas', default: 'no', description: '`yes`: exactly one ROLE=relay replica runs, so it needs neither REDIS_URL nor HANDOFF_PEERS (its state stays in STATE_DIR and a stopping relay keeps its queue on its volume). `no`: several relays; both are required.' }),
  HANDOFF_PEERS: text({ group: 'Replicas', description: "Comma-separated `host:port` of the relay replicas' PORT_HANDOFF (default port 10025), or one name that resolves to all of them (a headless Service); this replica's own address is skipped. A stopping relay hands what is left in its queue to the first peer that answers. ROLE=relay only; required there unless SINGLE_RELAY=yes.", list: true }).transform((raw, ctx) =>
    splitList(raw).flatMap((item) => {
      const parsed = parseServiceAddress(item, 10025);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message, input: item });
      return parsed.ok ? [parsed.value] : [];
    }),
  ),
  HANDOFF_PASSWORD: text({ group: 'Replicas', description: "Password of the handoff account (`relaybox-handoff`) with which relays hand their queue to each other, the same on every relay; at least 16 characters. The account is accepted on PORT_HANDOFF only (refused on 587 and 465).", secret: true }),
  HANDOFF_PASSWORD_FILE: secretFile({ group: 'Replicas', description: 'File holding HANDOFF_PASSWORD (a Kubernetes secret shared by the relays).' }),
  DRAIN_SECONDS: seconds('15', 'ROLE=relay, on SIGTERM: after closing its SMTP ports, how long a relay keeps delivering its own queue (less if nothing more can go) before handing the rest to a peer.'),
  HANDOFF_SECONDS: seconds('20', "ROLE=relay, on SIGTERM: how long the handoff to the peers may take; what is still queued then stays on the replica's volume (`queue_stranded`). Kubernetes' terminationGracePeriodSeconds must exceed DRAIN_SECONDS + HANDOFF_SECONDS + 10."),
};

/** The other areas' variables this one checks. */
type Others = {
  MAIL_DOMAINS: string[];
  MAIL_USERS_FILE: unknown[];
  MAILBOX_QUOTA: string | undefined;
  TLS_CERT_FILE: unknown;
  TLS_KEY_FILE: unknown;
  DKIM_SIGNING: 'on' | 'off';
  DKIM_DOMAINS: string[];
  DKIM_KEY_DIR: string | undefined;
};

type Env = Values<typeof variables> & Others;

const redisUrl = (env: Env) => env.REDIS_URL || env.REDIS_URL_FILE;
const handoffPassword = (env: Env) => env.HANDOFF_PASSWORD || env.HANDOFF_PASSWORD_FILE;

export function check(env: Env, issue: Issue): void {
  eitherOr(env, issue, 'REDIS_URL', 'REDIS_URL_FILE');
  eitherOr(env, issue, 'HANDOFF_PASSWORD', 'HANDOFF_PASSWORD_FILE');
  const url = redisUrl(env);
  const parsedUrl = url ? parseRedisUrl(url) : undefined;
  if (parsedUrl && !parsedUrl.ok) issue(env.REDIS_URL ? 'REDIS_URL' : 'REDIS_URL_FILE', parsedUrl.message);
  const role = env.ROLE;
  const relayOnly: Array<[string, boolean]> = [
    ['MAILBOX_LMTP_HOST', env.MAILBOX_LMTP_HOST !== undefined],
    ['HANDOFF_PEERS', env.HANDOFF_PEERS.length > 0],
    [env.HANDOFF_PASSWORD ? 'HANDOFF_PASSWORD' : 'HANDOFF_PASSWORD_FILE', Boolean(handoffPassword(env))],
    ['SINGLE_RELAY', env.SINGLE_RELAY === 'yes'],
  ];
  if (role !== 'relay') for (const [name, set] of relayOnly) if (set) issue(name, `only for ROLE=relay (ROLE is ${role})`);
  if (role === 'all') return;

  // Nothing a replica must not invent on its own: it would differ from one replica to the next.
  if (!env.TLS_CERT_FILE) issue('TLS_CERT_FILE', `required in ${SPLIT}: every replica serves the same certificate (a Secret), and the relays pin its public key for LMTP and the handoff; a generated one would differ per replica`);
  if (!env.TLS_KEY_FILE) issue('TLS_KEY_FILE', `required in ${SPLIT}: the key of TLS_CERT_FILE, from the same Secret`);
  if (env.MAIL_USERS_FILE.length === 0) issue('MAIL_USERS_FILE', `required in ${SPLIT}, with at least one account: every replica needs the same accounts (a Secret); a generated first-run account would differ per replica`);

  if (role === 'mailbox') {
    if (env.MAIL_DOMAINS.length === 0) issue('MAIL_DOMAINS', 'required in ROLE=mailbox: the domains whose mailboxes this replica keeps');
    return;
  }
  const signs = env.DKIM_SIGNING === 'on' && (env.DKIM_DOMAINS.length > 0 || env.MAIL_DOMAINS.length > 0);
  if (signs && !env.DKIM_KEY_DIR) issue('DKIM_KEY_DIR', 'required in ROLE=relay while signing: every relay signs with the same keys (a Secret made once with relaybox dkim-keygen); generated keys would differ per replica (or set DKIM_SIGNING=off)');
  if (env.MAIL_DOMAINS.length > 0 && !env.MAILBOX_LMTP_HOST) issue('MAILBOX_LMTP_HOST', 'required in ROLE=relay with MAIL_DOMAINS: the mailbox replica\'s LMTP address, e.g. relaybox-mailbox-lmtp:24');
  if (env.MAILBOX_QUOTA) issue('MAILBOX_QUOTA', 'set it on the ROLE=mailbox replica, which enforces it: a relay cannot ask the mailbox at RCPT time, so mail for a full mailbox is bounced by the relay after the mailbox refuses it (552 5.2.2)');
  if (env.SINGLE_RELAY === 'yes') {
    if (env.HANDOFF_PEERS.length > 0) issue('HANDOFF_PEERS', 'SINGLE_RELAY=yes says there is no other relay to hand the queue to; set one or the other');
    return;
  }
  if (!url) issue('REDIS_URL', 'required in ROLE=relay: bans and per-user sending counters must be shared by every relay replica (REDIS_URL_FILE works too); with exactly one relay, set SINGLE_RELAY=yes instead');
  if (env.HANDOFF_PEERS.length === 0) issue('HANDOFF_PEERS', 'required in ROLE=relay: where a stopping relay hands its queue, e.g. relaybox-relay-peers:10025 (a headless Service); with exactly one relay, set SINGLE_RELAY=yes instead');
  const password = handoffPassword(env);
  if (env.HANDOFF_PEERS.length > 0 && !password) issue('HANDOFF_PASSWORD_FILE', 'required with HANDOFF_PEERS: the handoff account\'s password, the same on every relay (a Secret; e.g. openssl rand -hex 24)');
  const problem = password ? (passwordProblem(password) ?? (password.length < 16 ? 'is shorter than 16 characters (e.g. openssl rand -hex 24)' : undefined)) : undefined;
  if (problem) issue(env.HANDOFF_PASSWORD ? 'HANDOFF_PASSWORD' : 'HANDOFF_PASSWORD_FILE', `the password ${problem}`);
}

/** The name the handoff account authenticates with (never a mail address, so it owns no sender). */
export const HANDOFF_ACCOUNT = 'relaybox-handoff';

export function toConfig(env: Env) {
  const url = redisUrl(env);
  const redis = url ? parseRedisUrl(url) : undefined;
  const password = handoffPassword(env);
  return {
    role: env.ROLE,
    mailboxLmtp: env.ROLE === 'relay' ? env.MAILBOX_LMTP_HOST : undefined,
    redis: redis?.ok ? redis.value : undefined,
    handoff: env.ROLE === 'relay' && env.HANDOFF_PEERS.length > 0 && password ? { peers: env.HANDOFF_PEERS, account: HANDOFF_ACCOUNT, password } : undefined,
    drain: { drainSeconds: env.DRAIN_SECONDS, handoffSeconds: env.HANDOFF_SECONDS },
  };
}

/** The listeners this role serves: the others get port 0 (the handoff listener also needs peers). */
export function portsForRole(ports: Ports, role: Role, handoff: boolean): Ports {
  const serves = (row: (typeof LISTENERS)[number]) => (row.inRoles as readonly Role[]).includes(role) && (row.name !== 'handoff' || handoff);
  return Object.fromEntries(LISTENERS.map((row) => [row.name, serves(row) ? ports[row.name] : 0])) as Ports;
}

// Every port relaybox listens on, one row each. The schema (PORT_* variables and their uniqueness),
// the renderers (master.cf services, Dovecot's inet listeners), the readiness probes, the
// port-in-use check, metrics' port labels and the selftest all read this table. Each row also names
// the replica roles (ROLE) that serve it; a row outside the configured role is disabled (port 0).

/** ROLE: `all` is the single box; `relay` and `mailbox` split it into replicas (README, "More than one machine"). */
export const ROLES = ['all', 'relay', 'mailbox'] as const;
export type Role = (typeof ROLES)[number];

interface ListenerRow {
  /** Also the Postfix syslog_name suffix and the metrics `port` label. */
  name: string;
  variable: string;
  defaultPort: number;
  /** `supervisor` is relaybox's own HTTP server. */
  daemon: 'postfix' | 'dovecot' | 'supervisor';
  /** lmtp greets like smtp. */
  protocol: 'smtp' | 'lmtp' | 'imap' | 'http';
  /** implicit: TLS from the first byte; starttls: plaintext until STARTTLS (required before AUTH/LOGIN). */
  tls: 'implicit' | 'starttls' | 'none';
  /**
   * inbound: mail for the local domains, no AUTH; submission: authenticated users only; delivery:
   * LMTP from the relay replicas; handoff: a stopping relay replica's queue, from its peers.
   */
  role: 'inbound' | 'submission' | 'mailbox' | 'delivery' | 'handoff' | 'http';
  /** The ROLE values that serve this listener. */
  inRoles: readonly Role[];
  purpose: string;
}

export const LISTENERS = [
  { name: 'smtp', variable: 'PORT_SMTP', defaultPort: 25, daemon: 'postfix', protocol: 'smtp', tls: 'starttls', role: 'inbound', inRoles: ['all', 'relay'], purpose: 'SMTP for inbound mail to MAIL_DOMAINS (no AUTH)' },
  { name: 'submission', variable: 'PORT_SUBMISSION', defaultPort: 587, daemon: 'postfix', protocol: 'smtp', tls: 'starttls', role: 'submission', inRoles: ['all', 'relay'], purpose: 'submission with STARTTLS required before AUTH' },
  { name: 'submissions', variable: 'PORT_SUBMISSIONS', defaultPort: 465, daemon: 'postfix', protocol: 'smtp', tls: 'implicit', role: 'submission', inRoles: ['all', 'relay'], purpose: 'submission with implicit TLS' },
  { name: 'imap', variable: 'PORT_IMAP', defaultPort: 143, daemon: 'dovecot', protocol: 'imap', tls: 'starttls', role: 'mailbox', inRoles: ['all', 'mailbox'], purpose: 'IMAP with STARTTLS required before login' },
  { name: 'imaps', variable: 'PORT_IMAPS', defaultPort: 993, daemon: 'dovecot', protocol: 'imap', tls: 'implicit', role: 'mailbox', inRoles: ['all', 'mailbox'], purpose: 'IMAP with implicit TLS' },
  { name: 'lmtp', variable: 'PORT_LMTP', defaultPort: 24, daemon: 'dovecot', protocol: 'lmtp', tls: 'starttls', role: 'delivery', inRoles: ['mailbox'], purpose: 'LMTP from the relay replicas into the mailboxes (ROLE=mailbox only; STARTTLS offered, required by the relays)' },
  { name: 'handoff', variable: 'PORT_HANDOFF', defaultPort: 10025, daemon: 'postfix', protocol: 'smtp', tls: 'starttls', role: 'handoff', inRoles: ['relay'], purpose: 'SMTP on which a stopping relay replica hands its queue to this one (ROLE=relay with HANDOFF_PEERS only; STARTTLS and the handoff account required)' },
  { name: 'http', variable: 'PORT_HTTP', defaultPort: 8080, daemon: 'supervisor', protocol: 'http', tls: 'none', role: 'http', inRoles: ['all', 'relay', 'mailbox'], purpose: 'HTTP for /health, /ready and /metrics' },
] as const satisfies readonly ListenerRow[];

export type Listener = (typeof LISTENERS)[number];
type ListenerName = Listener['name'];
export type Ports = Record<ListenerName, number>;

/** The rows of enabled listeners (port > 0) with their configured port. */
export function enabledListeners(ports: Ports): Array<Listener & { port: number }> {
  return LISTENERS.filter((row) => ports[row.name] > 0).map((row) => ({ ...row, port: ports[row.name] }));
}

/** The address local clients (probes, selftest) connect to: BIND_ADDRESS unless it is a wildcard. */
export function localAddress(bindAddress: string | undefined): string {
  return bindAddress && !['0.0.0.0', '::'].includes(bindAddress) ? bindAddress : '127.0.0.1';
}

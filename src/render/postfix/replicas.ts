// Postfix in the split roles: a relay replica delivers the local domains to the mailbox replica over
// LMTP with STARTTLS (the mailbox's certificate pinned to the shared key), accepts a stopping peer's
// queue on its handoff listener (STARTTLS and the handoff account, nothing else), and, while it
// stops itself, closes its listeners and hands what is queued to a peer the same way.
import { isIP } from 'node:net';
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { table, type Setting } from './format.ts';

type Config = RenderInput['config'];

const bracketed = (host: string) => (isIP(host) !== 0 ? `[${host}]` : host);

/** TLS settings of a client (`lmtp` or `smtp`) that accepts only the certificate whose public key is pinned. */
function pinned(client: 'lmtp' | 'smtp', publicKey: string | undefined): Setting[] {
  return [
    [`${client}_tls_security_level`, publicKey ? 'fingerprint' : 'encrypt'],
    [`${client}_tls_fingerprint_digest`, 'sha256'],
    ...(publicKey ? ([[`${client}_tls_fingerprint_cert_match`, publicKey]] as Setting[]) : []),
    [`${client}_tls_mandatory_protocols`, '>=TLSv1.2'],
    [`${client}_tls_loglevel`, 1],
    [`${client}_tls_session_cache_database`, ''],
  ];
}

/** main.cf: where mail for the local domains goes (Dovecot's socket, or the mailbox replica over LMTP). */
export function deliverySettings({ config, tls }: RenderInput): Setting[] {
  const mailbox = config.mailboxLmtp;
  if (config.role !== 'relay' || !mailbox) return [['virtual_transport', 'lmtp:unix:private/dovecot-lmtp']];
  return [['virtual_transport', `lmtp:inet:${bracketed(mailbox.host)}:${mailbox.port}`], ...pinned('lmtp', tls.publicKey)];
}

/** Whether this relay accepts and makes handoffs (ROLE=relay with HANDOFF_PEERS). */
export const handsOff = (config: Config) => config.handoff !== undefined && config.ports.handoff > 0;

/** master.cf options of the handoff listener: STARTTLS, the handoff account only, no milter, no limits. */
export function handoffListenerOptions(paths: StatePaths): string[] {
  return [
    'smtpd_tls_security_level=encrypt',
    'smtpd_sasl_auth_enable=yes',
    'smtpd_tls_auth_only=yes',
    'smtpd_helo_restrictions=',
    'smtpd_sender_restrictions=',
    // The mail was accepted, signed and scanned by the peer already; it may go anywhere.
    `smtpd_relay_restrictions=check_sasl_access,texthash:${paths.handoffLogins},reject`,
    'smtpd_recipient_restrictions=',
    'smtpd_data_restrictions=reject_unauth_pipelining',
    'smtpd_milters=',
  ];
}

/** Restrictions put in front of the submission ports' relay check: the handoff account is refused there. */
export function handoffRefusal(config: Config, paths: StatePaths): string[] {
  return handsOff(config) ? [`check_sasl_access,texthash:${paths.handoffRefused}`] : [];
}

/**
 * main.cf while handing off: everything queued (the local domains too) goes to the peer's handoff
 * listener, over TLS with the shared certificate pinned, as the handoff account. Replaces the
 * upstream settings, so no smarthost credential is ever offered to a peer.
 */
export function handoffSettings({ config, tls, drain }: RenderInput, paths: StatePaths): Setting[] | undefined {
  const peer = drain?.handoffTo;
  if (!peer || !config.handoff) return undefined;
  return [
    ['relayhost', `[${peer.host}]:${peer.port}`],
    ['transport_maps', `texthash:${paths.handoffTransport}`],
    ...pinned('smtp', tls.publicKey),
    ['smtp_sasl_auth_enable', 'yes'],
    ['smtp_sasl_password_maps', `texthash:${paths.handoffPasswordMap}`],
    ['smtp_sasl_security_options', 'noanonymous'],
    ['smtp_sasl_tls_security_options', 'noanonymous'],
  ];
}

/**
 * main.cf while stopping: delivery attempts that cannot connect give up within seconds (not
 * Postfix's 30 s), so an unreachable upstream cannot eat the drain and handoff time.
 */
export function drainSettings({ drain }: RenderInput): Setting[] {
  return drain ? [['smtp_connect_timeout', '5s'], ['lmtp_connect_timeout', '5s']] : [];
}

export function replicaFiles({ config, drain }: RenderInput, paths: StatePaths): RenderedFile[] {
  if (!handsOff(config) || !config.handoff) return [];
  const { account, password } = config.handoff;
  const peer = drain?.handoffTo;
  const nexthop = peer && `[${peer.host}]:${peer.port}`;
  return [
    { path: paths.handoffLogins, content: table([[account, 'OK']]), mode: 0o644 },
    { path: paths.handoffRefused, content: table([[account, 'REJECT the handoff account may be used only on the handoff port']]), mode: 0o644 },
    ...(nexthop
      ? [
          { path: paths.handoffTransport, content: table([['*', `smtp:${nexthop}`]]), mode: 0o644 },
          { path: paths.handoffPasswordMap, content: table([[nexthop, `${account}:${password}`]]), mode: 0o600 },
        ]
      : []),
  ];
}

// Pure renderer: Config -> Postfix main.cf, master.cf and lookup tables (texthash:, no postmap needed).
// Each concern has its file in postfix/: the upstream, the maps, master.cf.
import type { RenderInput, RenderedFile } from './types.ts';
import type { StatePaths } from './paths.ts';
import { INTERMEDIATE_CIPHERS } from './tls-policy.ts';
import { HEADER, lines } from './postfix/format.ts';
import { mapFiles, postmasterSettings } from './postfix/maps.ts';
import { policySettings, quotaCheck, renderMasterCf } from './postfix/master-cf.ts';
import { upstreamFiles, upstreamSettings } from './postfix/upstream.ts';
import { directFiles, directSettings } from './postfix/direct.ts';
import { milterFiles, milterSettings } from './postfix/milters.ts';
import { privacyFiles, privacySettings } from './postfix/privacy.ts';
import { asciiCheck, envelopeFiles, envelopeSettings } from './postfix/envelope.ts';
import { deliverySettings, drainSettings, handoffSettings, replicaFiles } from './postfix/replicas.ts';
import { srsFiles, srsSettings } from './postfix/srs.ts';

export { renderMasterCf } from './postfix/master-cf.ts';
export { banMapFile } from './postfix/maps.ts';

/** Postfix mynetworks syntax: IPv6 networks are bracketed. */
function postfixNetwork({ address, prefix, family }: RenderInput['config']['trustedNetworks'][number]): string {
  return family === 6 ? `[${address}]/${prefix}` : `${address}/${prefix}`;
}

export function renderMainCf(input: RenderInput, paths: StatePaths): string {
  const { config, tls } = input;
  const trusted = config.trustedNetworks.map(postfixNetwork);
  const bind = config.bindAddress;
  const srs = srsSettings(input);
  return `${HEADER}${lines([
    ['compatibility_level', '3.6'],
    ['myhostname', config.hostname],
    ['myorigin', '$myhostname'],
    ['mydestination', ''],
    ['local_recipient_maps', ''],
    ['local_transport', 'error:5.1.1 local delivery is disabled on this relay'],
    ['alias_maps', ''],
    ['alias_database', ''],
    ['queue_directory', paths.queue],
    ['data_directory', paths.postfixData],
    ['mail_owner', 'postfix'],
    ['setgid_group', 'postdrop'],
    ['inet_interfaces', bind ?? 'all'],
    ['inet_protocols', bind ? (bind.includes(':') ? 'ipv6' : 'ipv4') : 'all'],
    ['mynetworks', trusted.join(', ')],
    ['smtpd_banner', '$myhostname ESMTP'],
    ['biff', 'no'],
    // An smtpd that cannot reach Dovecot's auth socket exits, and the master then holds the whole
    // service for this long (default 60 s): short, so that 465 serves again as soon as Dovecot is back.
    ['service_throttle_time', '1s'],
    ['append_dot_mydomain', 'no'],
    ['message_size_limit', config.messageSizeLimit],
    ['mailbox_size_limit', 0],
    ['recipient_delimiter', '+'],
    ['maillog_file', '/dev/stdout'],
    // Inbound (port 25): mail for our own domains only, unless the client is in TRUSTED_NETWORKS.
    ['smtpd_helo_required', 'yes'],
    ['smtpd_recipient_limit', config.recipientLimit],
    ['smtpd_client_auth_rate_limit', config.auth.rateLimit],
    ['smtpd_client_event_limit_exceptions', ''],
    // Banned client addresses (maintained by the supervisor) are refused at connect on every port.
    ['smtpd_delay_reject', 'no'],
    ['smtpd_client_restrictions', `check_client_access texthash:${paths.bannedClients}`],
    ['disable_vrfy_command', 'yes'],
    ['strict_rfc821_envelopes', 'yes'],
    ['smtpd_relay_restrictions', [...(trusted.length ? ['permit_mynetworks'] : []), 'reject_unauth_destination'].join(', ')],
    ['smtpd_recipient_restrictions', [asciiCheck('recipient', paths), 'reject_non_fqdn_recipient', 'reject_unlisted_recipient', ...quotaCheck(config)].join(', ')],
    ['smtpd_data_restrictions', 'reject_unauth_pipelining'],
    ...envelopeSettings(input, paths),
    // SMTP smuggling: only <CR><LF>.<CR><LF> ends DATA; a bare <LF> is read as <CR><LF> (Postfix 3.9's default).
    ['smtpd_forbid_bare_newline', 'normalize'],
    ['smtpd_forbid_unauth_pipelining', 'yes'],
    ['smtpd_sasl_auth_enable', 'no'],
    // TLS for every smtpd; port 25 offers it, submission requires it (master.cf).
    ['smtpd_tls_chain_files', `${tls.keyFile}, ${tls.certFile}`],
    ['smtpd_tls_security_level', 'may'],
    ['smtpd_tls_auth_only', 'yes'],
    // The strict floor where TLS is required (465, 587); port 25 keeps Postfix's opportunistic
    // defaults, since refusing an old client's TLS only sends its mail in clear (RFC 7435).
    ['smtpd_tls_mandatory_protocols', '>=TLSv1.2'],
    ['smtpd_tls_mandatory_ciphers', 'high'],
    ['tls_high_cipherlist', INTERMEDIATE_CIPHERS],
    ['tls_preempt_cipherlist', 'no'],
    // No TLS 1.3 session tickets: the ticket Postfix sends after the handshake holds the next reply
    // behind Nagle and the client's delayed ACK (~40 ms per new session; BENCHMARKS.md).
    ['tls_config_file', paths.opensslConf],
    ['tls_config_name', 'postfix'],
    ['tls_session_ticket_cipher', ''],
    ['smtpd_tls_loglevel', 1],
    ['smtpd_tls_received_header', 'yes'],
    ['smtpd_tls_session_cache_database', ''],
    // SASL through Dovecot's socket inside the queue directory (reachable from the chroot).
    ['smtpd_sasl_type', 'dovecot'],
    ['smtpd_sasl_path', 'private/auth'],
    ['smtpd_sasl_security_options', 'noanonymous'],
    ['smtpd_sasl_tls_security_options', 'noanonymous'],
    ...privacySettings(input),
    ['smtpd_sender_login_maps', `texthash:${paths.senderLoginMap}`],
    // Local mailboxes: delivered to Dovecot over LMTP; unknown recipients refused at RCPT time.
    ['virtual_mailbox_domains', config.domains.join(', ')],
    ['virtual_mailbox_maps', `texthash:${paths.mailboxMap}`],
    ...deliverySettings(input),
    ['virtual_alias_maps', [`texthash:${paths.aliasMap}`, ...srs.aliasMaps].join(', ')],
    ...srs.settings,
    ...milterSettings(input, paths),
    // A stopping relay replica hands everything to a peer instead (postfix/replicas.ts).
    ...(handoffSettings(input, paths) ?? upstreamSettings(input, paths)),
    ...directSettings(input),
    ...drainSettings(input),
    ...postmasterSettings(input),
    ...policySettings(input),
  ])}\n`;
}

/** OpenSSL settings for Postfix's processes (tls_config_name = postfix): issue no TLS 1.3 tickets. */
const OPENSSL_CONF = `${HEADER}postfix = postfix_settings

[postfix_settings]
ssl_conf = postfix_ssl_settings

[postfix_ssl_settings]
system_default = postfix_no_tickets

[postfix_no_tickets]
NumTickets = 0
`;

export function renderPostfix(input: RenderInput, paths: StatePaths): RenderedFile[] {
  if (input.config.role === 'mailbox') return []; // no Postfix: the relays deliver over LMTP
  return [
    { path: paths.mainCf, content: renderMainCf(input, paths), mode: 0o644 },
    { path: paths.masterCf, content: renderMasterCf(input, paths), mode: 0o644 },
    { path: paths.opensslConf, content: OPENSSL_CONF, mode: 0o644 },
    ...mapFiles(input, paths),
    ...envelopeFiles(input, paths),
    ...privacyFiles(input, paths),
    ...upstreamFiles(input, paths),
    ...directFiles(input, paths),
    ...milterFiles(input, paths),
    ...replicaFiles(input, paths),
    ...srsFiles(input, paths),
  ];
}

// Pure renderer: Config -> Postfix main.cf, master.cf and lookup tables (texthash:, no postmap needed).
import type { RenderInput, RenderedFile } from './types.ts';
import type { StatePaths } from './paths.ts';
import { INTERMEDIATE_CIPHERS } from './tls-policy.ts';
import { enabledListeners, type Listener } from '../listeners.ts';

const HEADER = '# Rendered by relaybox from the environment at every start; edits here are overwritten.\n';

function lines(settings: Array<[string, string | number] | false>): string {
  return settings
    .filter((entry): entry is [string, string | number] => entry !== false)
    .map(([key, value]) => `${key} = ${value}`.trimEnd())
    .join('\n');
}

/** Postfix mynetworks syntax: IPv6 networks are bracketed. */
function postfixNetwork({ address, prefix, family }: RenderInput['config']['trustedNetworks'][number]): string {
  return family === 6 ? `[${address}]/${prefix}` : `${address}/${prefix}`;
}

function listenerName(bindAddress: string | undefined, port: number): string {
  if (!bindAddress) return String(port);
  return bindAddress.includes(':') ? `[${bindAddress}]:${port}` : `${bindAddress}:${port}`;
}

export function renderMainCf({ config, tls }: RenderInput, paths: StatePaths): string {
  const trusted = config.trustedNetworks.map(postfixNetwork);
  const relay = config.relay;
  const credentials = relay?.credentials;
  const bind = config.bindAddress;
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
    ['smtpd_recipient_restrictions', ['reject_non_fqdn_recipient', 'reject_unlisted_recipient', ...quotaCheck(config)].join(', ')],
    ['smtpd_data_restrictions', 'reject_unauth_pipelining'],
    // SMTP smuggling: only <CR><LF>.<CR><LF> ends DATA; a bare <LF> is read as <CR><LF> (Postfix 3.9's default).
    ['smtpd_forbid_bare_newline', 'normalize'],
    ['smtpd_forbid_unauth_pipelining', 'yes'],
    ['smtpd_sasl_auth_enable', 'no'],
    // TLS for every smtpd; port 25 offers it, submission requires it (master.cf).
    ['smtpd_tls_chain_files', `${tls.keyFile}, ${tls.certFile}`],
    ['smtpd_tls_security_level', 'may'],
    ['smtpd_tls_auth_only', 'yes'],
    ['smtpd_tls_protocols', '>=TLSv1.2'],
    ['smtpd_tls_mandatory_protocols', '>=TLSv1.2'],
    ['smtpd_tls_ciphers', 'high'],
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
    ['smtpd_sasl_authenticated_header', 'yes'],
    ['smtpd_sender_login_maps', `texthash:${paths.senderLoginMap}`],
    // Local mailboxes: delivered to Dovecot over LMTP; unknown recipients refused at RCPT time.
    ['virtual_mailbox_domains', config.domains.join(', ')],
    ['virtual_mailbox_maps', `texthash:${paths.mailboxMap}`],
    ['virtual_transport', 'lmtp:unix:private/dovecot-lmtp'],
    ['virtual_alias_maps', `texthash:${paths.aliasMap}`],
    // Upstream.
    ['relayhost', relay ? `${relay.noMx ? `[${relay.host}]` : relay.host}:${relay.port}` : ''],
    ['smtp_tls_security_level', credentials ? 'encrypt' : 'may'],
    ['smtp_tls_mandatory_protocols', '>=TLSv1.2'],
    // No CA bundle: `may`/`encrypt` do not verify the upstream's certificate, and parsing the bundle
    // cost every smtp process measurable CPU per message (BENCHMARKS.md).
    ['smtp_tls_loglevel', 1],
    ['smtp_tls_session_cache_database', ''],
    ...(credentials
      ? ([
          ['smtp_sasl_auth_enable', 'yes'],
          ['smtp_sasl_password_maps', `texthash:${paths.relayPasswordMap}`],
          ['smtp_sasl_security_options', 'noanonymous'],
          ['smtp_sasl_tls_security_options', 'noanonymous'],
        ] as Array<[string, string]>)
      : []),
  ])}\n`;
}

/** With MAILBOX_QUOTA, Dovecot's quota-status answers at RCPT time (552 5.2.2 when a mailbox is full). */
function quotaCheck(config: RenderInput['config']): string[] {
  return config.mailboxQuota ? ['check_policy_service unix:private/quota-status'] : [];
}

// Submission (587 STARTTLS, 465 implicit TLS): authenticated users only, each sending as themselves.
const submissionOptions = (config: RenderInput['config']) => [
  'smtpd_tls_security_level=encrypt',
  'smtpd_sasl_auth_enable=yes',
  'smtpd_tls_auth_only=yes',
  'smtpd_helo_restrictions=',
  'smtpd_sender_restrictions=reject_non_fqdn_sender',
  'smtpd_relay_restrictions=permit_sasl_authenticated,reject',
  // After the relay check, so an unauthenticated client gets 554 5.7.1 whatever sender it claims.
  `smtpd_recipient_restrictions=${['reject_non_fqdn_recipient', 'reject_sender_login_mismatch', 'reject_unlisted_recipient', ...quotaCheck(config)].join(',').replaceAll(' ', ',')}`,
  'milter_macro_daemon_name=ORIGINATING',
];

/** master.cf options of one SMTP listener, from its row: its name in the logs, its role, its TLS mode. */
function listenerOptions(listener: Listener, config: RenderInput['config']): string[] {
  return [
    ...(listener.name === 'smtp' ? [] : [`syslog_name=postfix/${listener.name}`]),
    ...(listener.tls === 'implicit' ? ['smtpd_tls_wrappermode=yes'] : []),
    ...(listener.role === 'submission' ? submissionOptions(config) : []),
  ];
}

export function renderMasterCf({ config }: RenderInput): string {
  const bind = config.bindAddress;
  const service = (name: string, type: string, priv: string, unpriv: string, chroot: string, wakeup: string, maxproc: string, command: string, options: string[] = []) =>
    [[name, type, priv, unpriv, chroot, wakeup, maxproc, command].join('  '), ...options.map((o) => `  -o ${o}`)].join('\n');
  const smtpListeners = enabledListeners(config.ports).filter((listener) => listener.daemon === 'postfix');
  const entries = [
    ...smtpListeners.map((listener) => service(listenerName(bind, listener.port), 'inet', 'n', '-', 'y', '-', '-', 'smtpd', listenerOptions(listener, config))),
    service('pickup', 'unix', 'n', '-', 'y', '60', '1', 'pickup'),
    service('cleanup', 'unix', 'n', '-', 'y', '-', '0', 'cleanup'),
    service('qmgr', 'unix', 'n', '-', 'n', '300', '1', 'qmgr'),
    service('tlsmgr', 'unix', '-', '-', 'y', '1000?', '1', 'tlsmgr'),
    service('rewrite', 'unix', '-', '-', 'y', '-', '-', 'trivial-rewrite'),
    service('bounce', 'unix', '-', '-', 'y', '-', '0', 'bounce'),
    service('defer', 'unix', '-', '-', 'y', '-', '0', 'bounce'),
    service('trace', 'unix', '-', '-', 'y', '-', '0', 'bounce'),
    service('verify', 'unix', '-', '-', 'y', '-', '1', 'verify'),
    service('flush', 'unix', 'n', '-', 'y', '1000?', '0', 'flush'),
    service('proxymap', 'unix', '-', '-', 'n', '-', '-', 'proxymap'),
    service('proxywrite', 'unix', '-', '-', 'n', '-', '1', 'proxymap'),
    service('smtp', 'unix', '-', '-', 'y', '-', '-', 'smtp'),
    service('relay', 'unix', '-', '-', 'y', '-', '-', 'smtp'),
    service('showq', 'unix', 'n', '-', 'y', '-', '-', 'showq'),
    service('error', 'unix', '-', '-', 'y', '-', '-', 'error'),
    service('retry', 'unix', '-', '-', 'y', '-', '-', 'error'),
    service('discard', 'unix', '-', '-', 'y', '-', '-', 'discard'),
    service('lmtp', 'unix', '-', '-', 'y', '-', '-', 'lmtp'),
    service('anvil', 'unix', '-', '-', 'y', '-', '1', 'anvil'),
    service('scache', 'unix', '-', '-', 'y', '-', '1', 'scache'),
    service('postlog', 'unix-dgram', 'n', '-', 'n', '-', '1', 'postlogd'),
  ];
  return `${HEADER}# service  type  private  unpriv  chroot  wakeup  maxproc  command\n${entries.join('\n')}\n`;
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

const BANNED_TEXT = 'REJECT too many failed authentications from this address; try again later';

/** The access map of banned client addresses (AUTH_BAN_*), refused at connect on every SMTP port. */
export function banMapFile(paths: StatePaths, addresses: string[]): RenderedFile {
  return { path: paths.bannedClients, content: `${HEADER}${addresses.map((address) => `${address} ${BANNED_TEXT}\n`).join('')}`, mode: 0o644 };
}

/** texthash: tables; keys and values never contain whitespace (validated addresses). */
function table(rows: Array<[string, string]>): string {
  return `${HEADER}${rows.map(([key, value]) => `${key} ${value}\n`).join('')}`;
}

/** Who may use which sender address: each user their own, plus the aliases that point to them. */
function senderLogins({ users, config }: RenderInput): Array<[string, string]> {
  const known = new Set(users.map((u) => u.address));
  const aliasRows = config.aliases
    .filter((a) => !a.alias.startsWith('@'))
    .map((a): [string, string[]] => [a.alias, a.targets.filter((t) => known.has(t))])
    .filter(([, logins]) => logins.length > 0)
    .map(([alias, logins]): [string, string] => [alias, logins.join(',')]);
  return [...users.map((u): [string, string] => [u.address, u.address]), ...aliasRows];
}

/** Aliases; with a catch-all, local users map to themselves first so the catch-all cannot swallow them. */
function aliasRows({ users, config }: RenderInput): Array<[string, string]> {
  const local = new Set(config.domains);
  const hasCatchAll = config.aliases.some((a) => a.alias.startsWith('@'));
  const selves = hasCatchAll ? users.filter((u) => local.has(u.address.split('@')[1] ?? '')).map((u): [string, string] => [u.address, u.address]) : [];
  return [...selves, ...config.aliases.map((a): [string, string] => [a.alias, a.targets.join(',')])];
}

export function renderPostfix(input: RenderInput, paths: StatePaths): RenderedFile[] {
  const local = new Set(input.config.domains);
  const credentials = input.config.relay?.credentials;
  const relay = input.config.relay;
  return [
    { path: paths.mainCf, content: renderMainCf(input, paths), mode: 0o644 },
    { path: paths.masterCf, content: renderMasterCf(input), mode: 0o644 },
    { path: paths.opensslConf, content: OPENSSL_CONF, mode: 0o644 },
    banMapFile(paths, input.bannedClients),
    { path: paths.senderLoginMap, content: table(senderLogins(input)), mode: 0o644 },
    { path: paths.aliasMap, content: table(aliasRows(input)), mode: 0o644 },
    {
      path: paths.mailboxMap,
      content: table(input.users.filter((u) => local.has(u.address.split('@')[1] ?? '')).map((u) => [u.address, 'OK'])),
      mode: 0o644,
    },
    ...(relay && credentials
      ? [
          {
            path: paths.relayPasswordMap,
            content: table([[`${relay.noMx ? `[${relay.host}]` : relay.host}:${relay.port}`, `${credentials.username}:${credentials.password}`]]),
            mode: 0o600,
          },
        ]
      : []),
  ];
}

// Pure renderer: Config -> dovecot.conf and the passwd-file (SASL for Postfix, IMAP, LMTP delivery).
// ROLE=relay: authentication only (SASL for Postfix); ROLE=mailbox: IMAP and LMTP over TCP from
// the relays, no Postfix beside it.
import type { AppPassword, AuthPolicyEndpoint, RenderInput, RenderedFile } from './types.ts';
import type { UserEntry } from '../config/values.ts';
import { instanceName, type StatePaths } from './paths.ts';
import { INTERMEDIATE_CIPHERS } from './tls-policy.ts';
import { enabledListeners, LISTENERS } from '../listeners.ts';
import { APP_PASSWORD_LOG_DEBUG, renderAppPasswordFiles, renderAppPasswordPassdbs } from './app-passwords.ts';

export function renderDovecotConf(input: RenderInput, paths: StatePaths): string {
  const { config, tls, vmail } = input;
  const imapListeners = enabledListeners(config.ports).filter((listener) => listener.protocol === 'imap');
  const mailboxes = config.role !== 'relay';
  return `# Rendered by relaybox from the environment at every start; edits here are overwritten.
base_dir = ${paths.dovecotBase}
state_dir = ${paths.dovecotState}
instance_name = ${instanceName(paths.stateDir)}
protocols = ${mailboxes ? (imapListeners.length > 0 ? 'imap lmtp' : 'lmtp') : 'none'}
listen = ${config.bindAddress ?? '*, ::'}
hostname = ${config.hostname}
log_path = /dev/stderr
info_log_path = /dev/stderr
debug_log_path = /dev/stderr
log_timestamp =
${APP_PASSWORD_LOG_DEBUG}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = ${vmail.uid}
last_valid_uid = ${vmail.uid}
first_valid_gid = ${vmail.gid}
last_valid_gid = ${vmail.gid}
mail_location = maildir:~/Maildir
mail_privileged_group =

ssl = required
ssl_cert = <${tls.certFile}
ssl_key = <${tls.keyFile}
ssl_dh = <${paths.dhParams}
ssl_min_protocol = TLSv1.2
ssl_cipher_list = ${INTERMEDIATE_CIPHERS}
ssl_prefer_server_ciphers = no

disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_username_format = %Lu
auth_failure_delay = ${config.auth.failureDelaySeconds} secs
auth_verbose = yes
auth_verbose_passwords = no

# App passwords first (each slot, for the asking service), then the refusal of the account's own
# password (APP_PASSWORDS_ONLY, SMTP), then the account's own password.
${renderAppPasswordPassdbs(paths.appPasswordDir)}passdb {
  driver = passwd-file
  args = scheme=CRYPT username_format=%Lu ${paths.passwdFile}
}
userdb {
  driver = passwd-file
  args = username_format=%Lu ${paths.passwdFile}
  default_fields = uid=${vmail.uid} gid=${vmail.gid} home=${paths.mail}/%Ld/%Ln
}

service auth {
  unix_listener ${paths.authSocket} {
    mode = 0660
    user = postfix
    group = postfix
  }
${ownSocket('auth-userdb')}
}
${DEFAULT_SOCKETS.map(([name, socket]) => `service ${name} {\n${ownSocket(socket)}\n}\n`).join('')}${mailboxes ? mailboxServices(input, paths) : ''}${config.mailboxQuota ? quotaConf(config.mailboxQuota, paths, config.role === 'all') : ''}${input.authPolicy ? `!include ${paths.dovecotAuthPolicy}\n` : ''}`;
}

/**
 * Dovecot's own sockets in base_dir default to 0666 (any local user could deliver into any mailbox
 * over `lmtp`, or look up users): each is the mail user's (IMAP runs as it) or root's alone.
 */
const DEFAULT_SOCKETS: Array<[service: string, socket: string]> = [['indexer', 'indexer'], ['imap-urlauth-login', 'imap-urlauth'], ['dns-client', 'dns-client']];

function ownSocket(name: string): string {
  return `  unix_listener ${name} {\n    mode = 0600\n    user = vmail\n  }`;
}

/**
 * Dovecot asks the supervisor before checking each password (IMAP and SMTP AUTH alike) and fails
 * the login of a banned address. One request per login; if the endpoint does not answer within a
 * second the login proceeds (bans still hold on the SMTP ports through Postfix's access map).
 */
export function renderAuthPolicyConf(policy: AuthPolicyEndpoint): string {
  return `# Rendered by relaybox at every start; the API key changes with each start.
auth_policy_server_url = ${policy.url}
auth_policy_server_api_header = X-API-Key:${policy.apiKey}
auth_policy_hash_nonce = ${policy.nonce}
auth_policy_server_timeout_msecs = 1000
auth_policy_request_attributes = login=%{requested_username} remote=%{rip} protocol=%s
auth_policy_check_before_auth = yes
auth_policy_check_after_auth = no
auth_policy_report_after_auth = no
auth_policy_reject_on_fail = no
`;
}

/** LMTP (from Postfix's socket, or over TCP from the relay replicas) and IMAP. */
function mailboxServices({ config }: RenderInput, paths: StatePaths): string {
  const lmtp = config.role === 'mailbox'
    ? inetListener('lmtp', config.ports.lmtp, false)
    : `  unix_listener ${paths.lmtpSocket} {\n    mode = 0600\n    user = postfix\n    group = postfix\n  }`;
  return `service lmtp {
${lmtp}
${ownSocket('lmtp')}
}
service imap-login {
${LISTENERS.filter((listener) => listener.protocol === 'imap').map((listener) => inetListener(listener.name, config.ports[listener.name], listener.tls === 'implicit')).join('\n')}
}
protocol lmtp {
  postmaster_address = postmaster@${config.domains[0] ?? config.hostname}
}
`;
}

/** A disabled listener keeps its block with port 0, which Dovecot reads as "do not listen". */
function inetListener(name: string, port: number, implicitTls: boolean): string {
  return `  inet_listener ${name} {\n    port = ${port}\n${implicitTls ? '    ssl = yes\n' : ''}  }`;
}

/**
 * Dovecot enforces MAILBOX_QUOTA; its quota-status service lets Postfix refuse at RCPT time. In
 * ROLE=mailbox there is no Postfix beside it: LMTP refuses a full mailbox's RCPT (552 5.2.2).
 */
function quotaConf(quota: string, paths: StatePaths, statusService: boolean): string {
  return `
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
lmtp_rcpt_check_quota = yes
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=${quota}
  quota_status_success = DUNNO
  quota_status_nouser = DUNNO
  quota_status_overquota = "552 5.2.2 Mailbox is full"
}
${statusService ? quotaStatusService(paths) : ''}`;
}

function quotaStatusService(paths: StatePaths): string {
  return `service quota-status {
  executable = quota-status -p postfix
  client_limit = 1
  unix_listener ${paths.quotaSocket} {
    mode = 0600
    user = postfix
    group = postfix
  }
}
`;
}

/** The accounts; on a relay with handoffs also the handoff account (Postfix accepts it on the handoff port only). */
function passwdFile({ users, handoffHash, config }: RenderInput): string {
  const handoff = config.handoff && handoffHash ? [`${config.handoff.account}:${handoffHash}::::::\n`] : [];
  return [...users.map((u) => `${u.address}:${u.hash}::::::\n`), ...handoff].join('');
}

/** The app passwords of accounts that still exist: one removed from MAIL_USERS_FILE relays with none of its own. */
export function liveAppPasswords(passwords: AppPassword[], users: UserEntry[]): AppPassword[] {
  const live = new Set(users.map((u) => u.address));
  return passwords.filter((p) => live.has(p.user));
}

/** APP_PASSWORDS_ONLY resolved against the rendered accounts (`*` = every one). */
export function appPasswordsOnly(input: Pick<RenderInput, 'config' | 'users'>): string[] {
  const only = input.config.appPasswordsOnly;
  return only.includes('*') ? input.users.map((u) => u.address) : only;
}

export function renderDovecot(input: RenderInput, paths: StatePaths): RenderedFile[] {
  return [
    ...renderAppPasswordFiles(paths.appPasswordDir, liveAppPasswords(input.appPasswords ?? [], input.users), appPasswordsOnly(input)),
    { path: paths.dovecotConf, content: renderDovecotConf(input, paths), mode: 0o644 },
    { path: paths.passwdFile, content: passwdFile(input), mode: 0o640, group: 'dovecot' },
    ...(input.authPolicy ? [{ path: paths.dovecotAuthPolicy, content: renderAuthPolicyConf(input.authPolicy), mode: 0o600 }] : []),
  ];
}

// master.cf: one smtpd per SMTP listener (from the listeners table), then Postfix's own services.
import { enabledListeners, type Listener } from '../../listeners.ts';
import type { RenderInput } from '../types.ts';
import { statePaths, type StatePaths } from '../paths.ts';
import { HEADER, type Setting } from './format.ts';
import { asciiCheck } from './envelope.ts';
import { privacyCleanupOptions, privacyListenerOptions, SUBMISSION_CLEANUP } from './privacy.ts';
import { milterOptions } from './milters.ts';
import { handoffListenerOptions, handoffRefusal } from './replicas.ts';
import { IMPLICIT_TLS_TRANSPORT, implicitTlsUsed } from './upstream.ts';
import { certificateRelayCheck, clientCertOptions, POLICY_SERVICE, senderLoginCheck } from './client-certs.ts';
import { INBOUND_CLEANUP, inboundCleanupServiceOptions, inboundListenerOptions, srsOn } from './srs.ts';

/**
 * The smtp client for a smarthost on 465 / smtps: TLS from the first byte. Its level and name check
 * come from the TLS policy row as for STARTTLS; wrappermode refuses anything below encrypt. It logs
 * as postfix/smtp like the STARTTLS client, so the delivery metrics count it as upstream.
 */
const implicitTlsOptions = ['smtp_tls_wrappermode=yes', 'smtp_tls_security_level=encrypt'];

function listenerName(bindAddress: string | undefined, port: number): string {
  if (!bindAddress) return String(port);
  return bindAddress.includes(':') ? `[${bindAddress}]:${port}` : `${bindAddress}:${port}`;
}

/** With MAILBOX_QUOTA, Dovecot's quota-status answers at RCPT time (552 5.2.2 when a mailbox is full). */
export function quotaCheck(config: RenderInput['config']): string[] {
  return config.mailboxQuota ? ['check_policy_service unix:private/quota-status'] : [];
}


/** Per-user sending limits are on when any limit is (a suspension needs a limit to be reached); not on a mailbox replica (no submission). */
export function sendingLimitsOn(config: RenderInput['config']): boolean {
  const { messagesPerHour, recipientsPerDay, overrides } = config.sending;
  if (config.role === 'mailbox') return false;
  return messagesPerHour > 0 || recipientsPerDay > 0 || overrides.some((o) => Boolean(o.messagesPerHour || o.recipientsPerDay));
}

/**
 * main.cf: a policy service (the sending limits, Dovecot's quota-status) that does not answer within
 * 3 s costs the client a temporary error, never acceptance (Postfix tries twice, 1 s apart).
 */
export function policySettings({ config }: RenderInput): Setting[] {
  if (!sendingLimitsOn(config) && !config.clientCerts) return [];
  return [
    ['smtpd_policy_service_timeout', '3s'],
    ['smtpd_policy_service_default_action', '451 4.3.5 A policy service is unavailable; try again later'],
  ];
}

/** At DATA the recipients are known and the body not yet sent: the per-user limits decide there. */
function dataRestrictions(config: RenderInput['config']): string {
  return ['reject_unauth_pipelining', ...(sendingLimitsOn(config) ? [`check_policy_service,unix:${POLICY_SERVICE}`] : [])].join(',');
}

// Submission (587 STARTTLS, 465 implicit TLS): authenticated users only, each sending as themselves.
const submissionOptions = (config: RenderInput['config'], paths: StatePaths) => [
  'smtpd_tls_security_level=encrypt',
  'smtpd_sasl_auth_enable=yes',
  'smtpd_tls_auth_only=yes',
  'smtpd_helo_restrictions=',
  `smtpd_sender_restrictions=${[asciiCheck('sender', paths), 'reject_non_fqdn_sender'].join(',').replaceAll(' ', ',')}`,
  ...clientCertOptions(config),
  `smtpd_relay_restrictions=${[...handoffRefusal(config, paths), ...certificateRelayCheck(config), 'permit_sasl_authenticated', 'reject'].join(',')}`,
  // After the relay check, so an unauthenticated client gets 554 5.7.1 whatever sender it claims.
  `smtpd_recipient_restrictions=${[asciiCheck('recipient', paths), 'reject_non_fqdn_recipient', senderLoginCheck(config), 'reject_unlisted_recipient', ...quotaCheck(config)].join(',').replaceAll(' ', ',')}`,
  `smtpd_data_restrictions=${dataRestrictions(config)}`,
  'milter_macro_daemon_name=ORIGINATING',
];

/** master.cf options of one SMTP listener, from its row: its name in the logs, its role, its TLS mode. */
function listenerOptions(listener: Listener, input: RenderInput, paths: StatePaths): string[] {
  return [
    ...(listener.name === 'smtp' ? [] : [`syslog_name=postfix/${listener.name}`]),
    ...(listener.tls === 'implicit' ? ['smtpd_tls_wrappermode=yes'] : []),
    ...(listener.role === 'submission' ? [...submissionOptions(input.config, paths), ...privacyListenerOptions(input)] : []),
    ...(listener.role === 'handoff' ? handoffListenerOptions(paths) : []),
    ...(listener.role === 'inbound' ? inboundListenerOptions(input, paths) : []),
    ...(listener.role === 'submission' || listener.role === 'inbound' ? milterOptions(listener.role, input, paths) : []),
  ];
}

export function renderMasterCf(input: RenderInput, paths: StatePaths = statePaths(input.config.stateDir)): string {
  const { config } = input;
  const bind = config.bindAddress;
  const service = (name: string, type: string, priv: string, unpriv: string, chroot: string, wakeup: string, maxproc: string, command: string, options: string[] = []) =>
    [[name, type, priv, unpriv, chroot, wakeup, maxproc, command].join('  '), ...options.map((o) => `  -o ${o}`)].join('\n');
  // A relay replica that is stopping listens no more (it drains, then hands its queue to a peer).
  const smtpListeners = input.drain ? [] : enabledListeners(config.ports).filter((listener) => listener.daemon === 'postfix');
  const entries = [
    ...smtpListeners.map((listener) => service(listenerName(bind, listener.port), 'inet', 'n', '-', 'y', '-', '-', 'smtpd', listenerOptions(listener, input, paths))),
    service('pickup', 'unix', 'n', '-', 'y', '60', '1', 'pickup'),
    service('cleanup', 'unix', 'n', '-', 'y', '-', '0', 'cleanup'),
    ...(config.submitterPrivacy ? [service(SUBMISSION_CLEANUP, 'unix', 'n', '-', 'y', '-', '0', 'cleanup', privacyCleanupOptions(paths))] : []),
    ...(srsOn(input) ? [service(INBOUND_CLEANUP, 'unix', 'n', '-', 'y', '-', '0', 'cleanup', inboundCleanupServiceOptions)] : []),
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
    ...(implicitTlsUsed(config) ? [service(IMPLICIT_TLS_TRANSPORT, 'unix', '-', '-', 'y', '-', '-', 'smtp', implicitTlsOptions)] : []),
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


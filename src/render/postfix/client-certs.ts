// Client certificates on the submission ports (CLIENT_CA_FILE): asked for, verified against the
// operator's CA alone, and judged by the supervisor's policy service at RCPT (abuse/client-certs.ts)
// before permit_sasl_authenticated, so a certificate relays as its account and a login that must
// also show one is refused without it.
import type { RenderInput } from '../types.ts';

/** The supervisor's policy service, relative to the queue directory (= paths.policySocket). */
export const POLICY_SERVICE = 'private/relaybox-policy';

type ConfigOf = RenderInput['config'];

/** master.cf options of 587 and 465: ask every client for a certificate, trust only CLIENT_CA_FILE. */
export function clientCertOptions(config: ConfigOf): string[] {
  if (!config.clientCerts) return [];
  return ['smtpd_tls_ask_ccert=yes', `smtpd_tls_CAfile=${config.clientCerts.caFile}`, 'smtpd_tls_CApath=', 'smtpd_tls_fingerprint_digest=sha256'];
}

/** The relay check's first step on the submission ports: the certificate's verdict. */
export function certificateRelayCheck(config: ConfigOf): string[] {
  return config.clientCerts ? [`check_policy_service,unix:${POLICY_SERVICE}`] : [];
}

/**
 * The envelope sender check. With certificates, a session the relay check let through without a
 * login was checked there against the certificate's account, so only logins are checked here
 * (reject_sender_login_mismatch would refuse every sender of a certificate session).
 */
export function senderLoginCheck(config: ConfigOf): string {
  return config.clientCerts ? 'reject_authenticated_sender_login_mismatch' : 'reject_sender_login_mismatch';
}

/** main.cf: the header From: milter learns a certificate session's account from {cert_subject} (set only for a verified certificate). */
export const CERTIFICATE_MILTER_MACROS = 'i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer} {cert_subject}';

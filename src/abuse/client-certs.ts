// Relay by client certificate, decided by the supervisor's policy service at RCPT on the submission
// ports (before permit_sasl_authenticated). Postfix verifies the certificate against CLIENT_CA_FILE
// and passes its subject CN (ccert_subject) only when it verified it; the fingerprints come with
// every certificate. Pure: the policy service feeds it Postfix's request.
import { normalFingerprint } from '../config/areas/client-certs.ts';
import type { Config } from '../config/schema.ts';
import type { UserEntry } from '../config/values.ts';
import { maySendAs, type SendAsTable } from './header-from.ts';
import type { PolicyRequest } from './policy-service.ts';

export interface CertificateRules {
  accounts: ReadonlySet<string>;
  sendAs: SendAsTable;
  /** Normalised SHA-256 fingerprints, of certificates or of public keys. */
  revoked: ReadonlySet<string>;
  /** Accounts whose password alone does not relay. */
  required: ReadonlySet<string>;
}

export function certificateRules(settings: NonNullable<Config['clientCerts']>, users: UserEntry[], sendAs: SendAsTable): CertificateRules {
  return { accounts: new Set(users.map((user) => user.address)), sendAs, revoked: new Set(settings.revoked), required: new Set(settings.required) };
}

/** The verified certificate's CN, lower-cased (Postfix leaves ccert_subject empty for an unverified one). */
export function verifiedSubject(request: PolicyRequest): string | undefined {
  const subject = (request.ccert_subject ?? '').trim().toLowerCase();
  return subject === '' ? undefined : subject;
}

function isRevoked(rules: CertificateRules, request: PolicyRequest): boolean {
  return [request.ccert_fingerprint, request.ccert_pubkey_fingerprint].some((raw) => {
    const fingerprint = raw ? normalFingerprint(raw) : undefined;
    return fingerprint !== undefined && rules.revoked.has(fingerprint);
  });
}

/** What the relay check answers, and the account and refusal to log. */
export interface RelayVerdict {
  action: string;
  account?: string;
  refused?: string;
}

const DUNNO: RelayVerdict = { action: 'DUNNO' };

/** A login: passes on, unless its account must also show its own, unrevoked certificate. */
function judgeLogin(rules: CertificateRules, login: string, request: PolicyRequest): RelayVerdict {
  if (!rules.required.has(login)) return DUNNO;
  if (verifiedSubject(request) === login && !isRevoked(rules, request)) return DUNNO;
  const refused = verifiedSubject(request) === undefined ? 'no verified client certificate' : isRevoked(rules, request) ? 'the client certificate is revoked' : 'the client certificate names another account';
  return { action: `530 5.7.0 ${login} must also present its client certificate`, account: login, refused };
}

/**
 * OK (relay as the certificate's account) for a verified, unrevoked certificate naming an account
 * that may send as the envelope sender; a refusal naming why; DUNNO where no certificate decides
 * (the rest of smtpd_relay_restrictions then does: permit_sasl_authenticated, reject).
 */
export function judgeRelay(rules: CertificateRules, request: PolicyRequest): RelayVerdict {
  const login = (request.sasl_username ?? '').toLowerCase();
  if (login !== '') return judgeLogin(rules, login, request);
  const account = verifiedSubject(request);
  if (account === undefined) return DUNNO;
  if (isRevoked(rules, request)) return { action: '554 5.7.1 This client certificate is revoked', account, refused: 'revoked' };
  if (!rules.accounts.has(account)) return { action: '554 5.7.1 This client certificate names no account', account, refused: 'no such account' };
  const sender = (request.sender ?? '').toLowerCase();
  if (sender !== '' && !maySendAs(rules.sendAs, account, sender)) {
    return { action: `553 5.7.1 <${sender}>: Sender address rejected: not owned by ${account}, the client certificate's account`, account, refused: `sender ${sender} not owned` };
  }
  return { action: 'OK', account };
}

/** Who sends, for the limits at DATA: the login, or the account of the certificate that relayed. */
export function sendingAccount(request: PolicyRequest): string {
  return request.sasl_username || verifiedSubject(request) || '';
}

// Client certificates on the submission ports: devices whose certificate a CA of the operator's
// issued relay without a password, as the account the certificate names; chosen accounts must show
// their certificate beside their password; certificates are revoked by fingerprint.
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { readText, text } from '../fields.ts';
import { splitList } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as mailboxes } from './mailboxes.ts';
import type { variables as replicas } from './replicas.ts';

const GROUP = 'Client certificates';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** `AB:CD:...` or `abcd...`: a SHA-256 fingerprint as Postfix reports it (64 hex digits, colons optional). */
export function normalFingerprint(raw: string): string | undefined {
  const hex = raw.replaceAll(':', '').toUpperCase();
  return /^[0-9A-F]{64}$/.test(hex) ? hex : undefined;
}

const caFile = text({
  group: GROUP,
  description:
    "PEM file of the CA certificate(s) whose client certificates are accepted on 587 and 465 (asked for, never required of everyone). A verified certificate whose subject CN is an account's address relays without AUTH as that account: its sender addresses, the header From: check, the sending limits and suspension apply as to a login. Only these CAs are trusted for clients, not the system's. Empty = no client certificates.",
}).transform((path, ctx) => {
  if (path === '') return undefined;
  const pem = readText(path, ctx);
  if (pem === undefined) return z.NEVER;
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  const problem = blocks.length === 0 ? 'holds no PEM certificate' : blocks.map((block) => new X509Certificate(block)).some((cert) => !cert.ca) ? 'holds a certificate that is not a CA (basicConstraints CA:TRUE)' : undefined;
  if (problem) {
    ctx.addIssue({ code: 'custom', message: `${problem}; give the PEM certificate(s) of the CA that issues the client certificates`, input: path });
    return z.NEVER;
  }
  return path;
});

const revokedFile = text({
  group: GROUP,
  description:
    'Path of a file of revoked client certificates: one SHA-256 fingerprint per line (`openssl x509 -noout -fingerprint -sha256`, colons optional), of the certificate or of its public key; `#` starts a comment. Watched: a certificate added here is refused from the next message on, without a restart.',
}).transform((path, ctx) => {
  if (path === '') return [];
  const content = readText(path, ctx) ?? '';
  return content.split('\n').flatMap((line, index) => {
    const entry = line.replace(/#.*/, '').trim();
    if (entry === '') return [];
    const fingerprint = normalFingerprint(entry);
    if (fingerprint) return [fingerprint];
    ctx.addIssue({ code: 'custom', message: `line ${index + 1} is not a SHA-256 fingerprint (64 hex digits, colons optional)`, input: path });
    return [];
  });
});

export const variables = {
  CLIENT_CA_FILE: caFile,
  CLIENT_CERT_REVOKED_FILE: revokedFile,
  CLIENT_CERT_REQUIRED: text({
    group: GROUP,
    description: 'Accounts (comma or space separated) that must present their own certificate (CN = their address) in addition to their password on 587 and 465; without it their mail is refused with 530 5.7.0. Needs CLIENT_CA_FILE.',
    list: true,
  }).transform((raw) => splitList(raw.toLowerCase())),
};

type Env = Values<typeof variables & Pick<typeof mailboxes, 'MAIL_USERS' | 'MAIL_USERS_FILE'> & Pick<typeof replicas, 'ROLE'>>;

export function check(env: Env, issue: Issue): void {
  if (!env.CLIENT_CA_FILE) {
    if (env.CLIENT_CERT_REVOKED_FILE.length > 0) issue('CLIENT_CERT_REVOKED_FILE', 'revocations need CLIENT_CA_FILE (no client certificate is accepted without it)');
    if (env.CLIENT_CERT_REQUIRED.length > 0) issue('CLIENT_CERT_REQUIRED', 'requiring a certificate needs CLIENT_CA_FILE, the CA that issues them');
    return;
  }
  if (env.ROLE === 'mailbox') issue('CLIENT_CA_FILE', 'a mailbox replica has no submission ports; set it on the relay replicas');
  const accounts = new Set([...env.MAIL_USERS, ...env.MAIL_USERS_FILE].map((user) => user.address));
  for (const address of env.CLIENT_CERT_REQUIRED) {
    if (!accounts.has(address)) issue('CLIENT_CERT_REQUIRED', `${address} is not a user in MAIL_USERS or MAIL_USERS_FILE`, address);
  }
}

export function toConfig(env: Env) {
  return {
    clientCerts: env.CLIENT_CA_FILE ? { caFile: env.CLIENT_CA_FILE, revoked: env.CLIENT_CERT_REVOKED_FILE, required: env.CLIENT_CERT_REQUIRED } : undefined,
  };
}

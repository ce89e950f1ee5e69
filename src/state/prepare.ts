// Everything a start needs on disk before the daemons launch: directories with the right owners,
// the TLS material, Postfix's chroot files and the first-run account.
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { execa } from 'execa';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { parseUserEntry, splitUserEntries, type UserEntry } from '../config/values.ts';
import type { StatePaths } from '../render/paths.ts';
import { FFDHE2048_PEM } from '../render/tls-policy.ts';
import { userIds } from './accounts.ts';
import { hashPassword, randomPassword } from './password.ts';

function ensureDir(path: string, mode: number, owner?: { uid: number; gid: number }): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
  if (owner) chownSync(path, owner.uid, owner.gid);
}

export function prepareDirectories(paths: StatePaths, vmail: { uid: number; gid: number }): void {
  const postfix = userIds('postfix');
  ensureDir(paths.stateDir, 0o755);
  ensureDir(paths.postfix, 0o755);
  ensureDir(paths.queue, 0o755, { uid: 0, gid: 0 });
  ensureDir(paths.postfixData, 0o700, postfix);
  ensureDir(paths.dovecot, 0o755);
  ensureDir(paths.dovecotBase, 0o755);
  ensureDir(paths.dovecotState, 0o750);
  ensureDir(paths.tls, 0o700);
  ensureDir(paths.mail, 0o770, vmail);
}

// The files smtpd and smtp need inside their chroot (the queue directory), as Debian's init script copies.
const CHROOT_FILES = ['/etc/localtime', '/etc/services', '/etc/resolv.conf', '/etc/hosts', '/etc/host.conf', '/etc/nsswitch.conf'];

export function copyChrootFiles(paths: StatePaths): void {
  for (const file of CHROOT_FILES) {
    if (!existsSync(file)) continue;
    const target = `${paths.queue}${file}`;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}

/** The certificate and key to serve: the configured files, or a self-signed pair generated once. */
export async function ensureTls(config: Config, paths: StatePaths, log: Logger): Promise<{ certFile: string; keyFile: string }> {
  if (!existsSync(paths.dhParams)) writeFileSync(paths.dhParams, FFDHE2048_PEM, { mode: 0o644 });
  if (config.tls) return config.tls;
  if (!existsSync(paths.generatedKey) || !certificateFits(paths.generatedCert, config.hostname)) {
    await execa('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650',
      '-subj', `/CN=${config.hostname}`, '-addext', `subjectAltName=DNS:${config.hostname}`,
      '-keyout', paths.generatedKey, '-out', paths.generatedCert,
    ]);
    chmodSync(paths.generatedKey, 0o600);
    log.info({ event: 'tls_generated', file: paths.generatedCert }, 'generated a self-signed certificate');
  }
  log.warn({ event: 'tls_self_signed', file: paths.generatedCert }, `TLS_CERT_FILE is unset: serving a self-signed certificate for ${config.hostname}; clients will not trust it. Set TLS_CERT_FILE and TLS_KEY_FILE.`);
  return { certFile: paths.generatedCert, keyFile: paths.generatedKey };
}

/** The generated certificate is reused while it exists and still names MAIL_HOSTNAME. */
function certificateFits(file: string, hostname: string): boolean {
  try {
    return new X509Certificate(readFileSync(file)).checkHost(hostname) !== undefined;
  } catch {
    return false;
  }
}

/**
 * With no users configured, one account is generated on the first start: only its hash is stored
 * (STATE_DIR/generated-users) and its password is printed once. Later starts reuse the stored hash.
 */
export async function firstRunUsers(config: Config, paths: StatePaths, log: Logger): Promise<UserEntry[]> {
  if (config.users.length > 0) return config.users;
  if (existsSync(paths.generatedUsers)) {
    const entries = splitUserEntries(readFileSync(paths.generatedUsers, 'utf8')).map(parseUserEntry);
    const users = entries.flatMap((entry) => (entry.ok ? [entry.value] : []));
    if (users.length > 0) {
      log.warn({ event: 'generated_account', address: users[0]!.address }, 'MAIL_USERS is empty: using the account generated on the first start (its password was printed once then)');
      return users;
    }
  }
  const address = `admin@${config.domains[0] ?? config.hostname}`;
  const password = randomPassword();
  const hash = await hashPassword(password, 'SHA512-CRYPT');
  writeFileSync(paths.generatedUsers, `${address}:${hash}\n`, { mode: 0o600 });
  // The one place a password is logged, by design: the operator has no other way to learn it.
  log.warn({ event: 'generated_account', address, password }, `MAIL_USERS is empty: generated the account ${address} with password ${password} (shown only this once; set MAIL_USERS to replace it)`);
  return [{ address, scheme: 'SHA512-CRYPT', hash }];
}


// The TLS material to serve: the configured files, or a self-signed certificate generated once.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { startCommand } from './command.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { StatePaths } from '../render/paths.ts';
import { FFDHE2048_PEM } from '../render/tls-policy.ts';
import { writeDaemonFile } from './files.ts';

/** The certificate and key to serve: the configured files, or a self-signed pair generated once. */
export async function ensureTls(config: Config, paths: StatePaths, log: Logger): Promise<{ certFile: string; keyFile: string }> {
  if (!existsSync(paths.dhParams)) writeFileSync(paths.dhParams, FFDHE2048_PEM, { mode: 0o644 });
  if (config.tls) return servedCopy(config.tls, paths);
  if (!existsSync(paths.generatedKey) || !certificateFits(paths.generatedCert, config.hostname)) {
    // ECDSA P-256: made in ~10 ms where RSA 2048 takes 0.1–0.5 s; every client that trusts anything has it.
    await startCommand('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-days', '3650',
      '-subj', `/CN=${config.hostname}`, '-addext', `subjectAltName=DNS:${config.hostname}`,
      '-keyout', paths.generatedKey, '-out', paths.generatedCert,
    ]);
    chmodSync(paths.generatedKey, 0o600);
    log.info({ event: 'tls_generated', file: paths.generatedCert }, 'generated a self-signed certificate');
  }
  log.warn({ event: 'tls_self_signed', file: paths.generatedCert }, `TLS_CERT_FILE is unset: serving a self-signed certificate for ${config.hostname}; clients will not trust it. Set TLS_CERT_FILE and TLS_KEY_FILE.`);
  return { certFile: paths.generatedCert, keyFile: paths.generatedKey };
}

/**
 * The daemons read a copy of the configured pair, made only when the pair matches: a certificate
 * replaced by one that does not fit its key is refused (reload_rejected) and, since every new smtpd
 * and a restarted Dovecot read the files again, the copy keeps the old pair in service.
 */
function servedCopy(configured: { certFile: string; keyFile: string }, paths: StatePaths): { certFile: string; keyFile: string } {
  const cert = readFileSync(configured.certFile, 'utf8');
  const key = readFileSync(configured.keyFile, 'utf8');
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error('TLS_KEY_FILE does not match TLS_CERT_FILE (they changed while being read?); the certificate in service stays');
  }
  writeDaemonFile({ path: paths.servedCert, content: cert, mode: 0o644 });
  writeDaemonFile({ path: paths.servedKey, content: key, mode: 0o600 });
  return { certFile: paths.servedCert, keyFile: paths.servedKey };
}

/** The generated certificate is reused while it exists and still names MAIL_HOSTNAME. */
function certificateFits(file: string, hostname: string): boolean {
  try {
    return new X509Certificate(readFileSync(file)).checkHost(hostname) !== undefined;
  } catch {
    return false;
  }
}


// The TLS material to serve: the configured files, or a self-signed certificate generated once.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { execa } from 'execa';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { StatePaths } from '../render/paths.ts';
import { FFDHE2048_PEM } from '../render/tls-policy.ts';

/** The certificate and key to serve: the configured files, or a self-signed pair generated once. */
export async function ensureTls(config: Config, paths: StatePaths, log: Logger): Promise<{ certFile: string; keyFile: string }> {
  if (!existsSync(paths.dhParams)) writeFileSync(paths.dhParams, FFDHE2048_PEM, { mode: 0o644 });
  if (config.tls) return config.tls;
  if (!existsSync(paths.generatedKey) || !certificateFits(paths.generatedCert, config.hostname)) {
    // ECDSA P-256: made in ~10 ms where RSA 2048 takes 0.1–0.5 s; every client that trusts anything has it.
    await execa('openssl', [
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

/** The generated certificate is reused while it exists and still names MAIL_HOSTNAME. */
function certificateFits(file: string, hostname: string): boolean {
  try {
    return new X509Certificate(readFileSync(file)).checkHost(hostname) !== undefined;
  } catch {
    return false;
  }
}


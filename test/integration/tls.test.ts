// TLS baseline: 1.2 minimum with the intermediate cipher list on SMTP and IMAP; the configured
// certificate is the one presented.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls, type SecureVersion, type TLSSocket } from 'node:tls';
import { HOSTNAME, Instance } from '../helpers/instance.ts';
import { SmtpClient } from '../helpers/smtp.ts';

const dir = mkdtempSync('/tmp/rbtls-');
const certFile = `${dir}/cert.pem`;
const keyFile = `${dir}/key.pem`;
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${HOSTNAME}`, '-addext', `subjectAltName=DNS:${HOSTNAME}`, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
const expected = new X509Certificate(readFileSync(certFile)).fingerprint256;

// SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all, so a refusal is the server's.
const legacy = { minVersion: 'TLSv1' as SecureVersion, maxVersion: 'TLSv1.1' as SecureVersion, ciphers: 'DEFAULT@SECLEVEL=0' };

function handshake(socket: TLSSocket): Promise<{ protocol: string | null; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol(), fingerprint: socket.getPeerX509Certificate()?.fingerprint256 ?? '' });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** Implicit TLS (465, 993). */
function implicit(port: number, options: object) {
  return handshake(connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: HOSTNAME, ...options }));
}

/** STARTTLS on 587: the plain-text dialogue first, then the handshake on the same socket. */
async function starttls(port: number, options: object) {
  const socket = connectTcp({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => {
    let seen = '';
    socket.on('data', function onData(chunk) {
      seen += chunk;
      if (/^220 .*\r\n$/m.test(seen) && !seen.includes('EHLO-SENT')) {
        seen += 'EHLO-SENT';
        socket.write('EHLO client.example\r\n');
      } else if (/^250 .*\r\n/m.test(seen) && !seen.includes('STARTTLS-SENT')) {
        seen += 'STARTTLS-SENT';
        socket.write('STARTTLS\r\n');
      } else if (seen.includes('STARTTLS-SENT') && /220 2\.0\.0/.test(seen)) {
        socket.off('data', onData);
        resolve();
      }
    });
  });
  return handshake(connectTls({ socket, rejectUnauthorized: false, servername: HOSTNAME, ...options }));
}

describe('TLS baseline', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
  });
  after(async () => {
    await box.destroy();
  });

  const endpoints = () =>
    [
      ['465 (implicit TLS)', (o: object) => implicit(box.ports.submissions, o)],
      ['587 after STARTTLS', (o: object) => starttls(box.ports.submission, o)],
      ['993 (IMAPS)', (o: object) => implicit(box.ports.imaps, o)],
    ] as const;

  test('TLS 1.0/1.1 handshakes are refused by the server', async () => {
    for (const [name, connect] of endpoints()) {
      await assert.rejects(connect(legacy), (error: NodeJS.ErrnoException) => {
        assert.match(String(error.code ?? error.message), /ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|ECONNRESET|HANDSHAKE_FAILURE/i, `${name}: ${error.message}`);
        return true;
      }, name);
    }
  });

  test('TLS 1.2 and 1.3 succeed and present the certificate from TLS_CERT_FILE', async () => {
    for (const [name, connect] of endpoints()) {
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        const result = await connect({ minVersion: version, maxVersion: version });
        assert.equal(result.protocol, version, name);
        assert.equal(result.fingerprint, expected, `${name} ${version}: wrong certificate`);
      }
    }
  });

  test('TLS 1.2 offers only forward-secret AEAD ciphers (Mozilla intermediate)', async () => {
    for (const weak of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA']) {
      await assert.rejects(implicit(box.ports.submissions, { maxVersion: 'TLSv1.2', ciphers: weak }), `465 accepted ${weak}`);
    }
    const { client } = await SmtpClient.connect(box.ports.submissions, { tls: true, tlsOptions: { maxVersion: 'TLSv1.2' } });
    assert.match(client.tlsSocket?.getCipher().name ?? '', /^(ECDHE|DHE)-(RSA|ECDSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
    await client.quit();
  });
});

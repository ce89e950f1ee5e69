// TLS baseline: 1.2 minimum with the intermediate cipher list on SMTP and IMAP; the configured
// certificate is the one presented.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls, type ConnectionOptions, type SecureVersion, type TLSSocket } from 'node:tls';
import { HOSTNAME, Instance, freePort, waitFor } from '../helpers/instance.ts';

const dir = mkdtempSync('/tmp/rbtls-');
const certFile = `${dir}/cert.pem`;
const keyFile = `${dir}/key.pem`;
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${HOSTNAME}`, '-addext', `subjectAltName=DNS:${HOSTNAME}`, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
const expected = new X509Certificate(readFileSync(certFile)).fingerprint256;

// SECLEVEL=0 lets this client offer TLS 1.0/1.1 (and every cipher) at all, so a refusal is the server's.
const legacy: ConnectionOptions = { minVersion: 'TLSv1' as SecureVersion, maxVersion: 'TLSv1.1' as SecureVersion, ciphers: 'DEFAULT@SECLEVEL=0' };
/** What this client reports for the alert a server sends when it will not speak the client's protocol version (protocol_version). */
const PROTOCOL_VERSION_ALERT = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';
/** ... and for "no cipher in common" (handshake_failure). */
const HANDSHAKE_FAILURE_ALERT = 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE';
/** The server's own reason, as OpenSSL words it in Postfix's and Dovecot's log lines. */
const UNSUPPORTED_PROTOCOL = 'unsupported protocol';
const NO_SHARED_CIPHER = 'no shared cipher';

interface Handshake {
  protocol: string | null;
  fingerprint: string;
  cipher: string;
}

function handshake(socket: TLSSocket): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol(), fingerprint: socket.getPeerX509Certificate()?.fingerprint256 ?? '', cipher: socket.getCipher().name });
      socket.destroy();
    });
    socket.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
  });
}

/** Implicit TLS (465, 993). */
function implicit(port: number, options: ConnectionOptions) {
  return handshake(connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: HOSTNAME, ...options }));
}

/** STARTTLS on 587: the plain-text dialogue first, then the handshake on the same socket. */
async function starttls(port: number, options: ConnectionOptions) {
  const socket = connectTcp({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    let step = 0;
    socket.once('error', reject);
    socket.on('data', function onData(chunk) {
      seen += chunk;
      if (step === 0 && /^220 .*\r\n$/m.test(seen)) {
        step = 1;
        seen = '';
        socket.write('EHLO client.example\r\n');
      } else if (step === 1 && /^250 .*\r\n/m.test(seen)) {
        step = 2;
        seen = '';
        socket.write('STARTTLS\r\n');
      } else if (step === 2 && /^220 2\.0\.0/m.test(seen)) {
        socket.off('data', onData);
        resolve();
      }
    });
  });
  return handshake(connectTls({ socket, rejectUnauthorized: false, servername: HOSTNAME, ...options }));
}

/**
 * Every TLS 1.2 cipher an endpoint accepts, found the way sslscan does: offer everything this client
 * knows, note the cipher the server picks, offer everything but that, and so on until the server finds
 * nothing in common (a handshake_failure alert).
 */
async function acceptedTls12Ciphers(endpoint: Endpoint): Promise<string[]> {
  const accepted: string[] = [];
  for (;;) {
    const ciphers = ['ALL', 'COMPLEMENTOFALL', ...accepted.map((name) => `!${name}`), '@SECLEVEL=0'].join(':');
    const refused = await endpoint.refusal({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers });
    if ('handshake' in refused) {
      assert.equal(refused.handshake.protocol, 'TLSv1.2');
      assert.ok(!accepted.includes(refused.handshake.cipher), `${refused.handshake.cipher} negotiated although it was not offered`);
      accepted.push(refused.handshake.cipher);
      continue;
    }
    assert.equal(refused.server, NO_SHARED_CIPHER, `${endpoint.name}: the enumeration ended with ${refused.client} / ${refused.server}`);
    if (endpoint.alerts) assert.equal(refused.client, HANDSHAKE_FAILURE_ALERT);
    return accepted;
  }
}

interface Endpoint {
  name: string;
  connect: (options: ConnectionOptions) => Promise<Handshake>;
  /** Postfix sends the TLS alert before closing; Dovecot closes the connection without one. */
  alerts: boolean;
  /** A handshake, or why it failed: the client's error code and the reason the daemon logged. */
  refusal: (options: ConnectionOptions) => Promise<{ handshake: Handshake } | { client: string; server: string }>;
}

/** Forward secret (ephemeral (EC)DH key exchange) and AEAD (GCM or ChaCha20-Poly1305), in OpenSSL's names. */
const FORWARD_SECRET_AEAD = /^(ECDHE-(RSA|ECDSA)|DHE-RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/;

describe('TLS baseline', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
  });
  after(async () => {
    await box.destroy();
  });

  let endpointList: Endpoint[] | undefined;
  function endpoints(): Endpoint[] {
    const make = (name: string, service: 'postfix' | 'dovecot', connect: Endpoint['connect']): Endpoint => ({
      name,
      connect,
      alerts: service === 'postfix',
      async refusal(options) {
        const from = box.lines.length;
        let client: string;
        try {
          return { handshake: await connect(options) };
        } catch (error) {
          client = String((error as NodeJS.ErrnoException).code ?? (error as Error).message);
        }
        // The daemon's own verdict: the OpenSSL reason in its log line for this handshake.
        const server = await waitFor(`${name}: the daemon's reason for the failed handshake`, 10_000, () => {
          const lines = box.lines.slice(from).filter((line) => line.includes(`"service":"${service}"`));
          return lines.map((line) => /SSL routines::([a-z ]*[a-z])/.exec(line)?.[1]).find((reason) => reason !== undefined);
        }, 20);
        return { client, server };
      },
    });
    endpointList ??= [
      make('465 (implicit TLS)', 'postfix', (o) => implicit(box.ports.submissions, o)),
      make('587 after STARTTLS', 'postfix', (o) => starttls(box.ports.submission, o)),
      make('993 (IMAPS)', 'dovecot', (o) => implicit(box.ports.imaps, o)),
    ];
    return endpointList;
  }

  test('control: this client completes a TLS 1.1 handshake with a server that allows it (openssl s_server -tls1_1)', async (t) => {
    const port = await freePort();
    const server = spawn('openssl', ['s_server', '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-cert', certFile, '-key', keyFile, '-accept', `127.0.0.1:${port}`, '-quiet'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    server.stderr.on('data', (chunk) => (stderr += chunk));
    t.after(() => server.kill());
    let last: Error | undefined;
    const result = await waitFor('a TLS 1.1 handshake with openssl s_server', 10_000, () => implicit(port, legacy).catch((error: Error) => void (last = error)), 100).catch(() => {
      assert.fail(`no TLS 1.1 handshake with s_server: ${last?.message}; s_server: ${stderr}`);
    });
    assert.equal(result.protocol, 'TLSv1.1');
  });

  test('TLS 1.0/1.1 handshakes are refused for the protocol version (the floor, not a missing cipher)', async () => {
    for (const endpoint of endpoints()) {
      for (const version of ['TLSv1', 'TLSv1.1'] as const) {
        const refused = await endpoint.refusal({ ...legacy, minVersion: version, maxVersion: version });
        assert.ok(!('handshake' in refused), `${endpoint.name} accepted ${version}`);
        assert.equal(refused.server, UNSUPPORTED_PROTOCOL, `${endpoint.name} ${version}: the daemon logged "${refused.server}"`);
        // Dovecot closes without sending its alert; Postfix sends protocol_version.
        assert.equal(refused.client, endpoint.alerts ? PROTOCOL_VERSION_ALERT : 'ECONNRESET', `${endpoint.name} ${version}`);
      }
    }
  });

  test('TLS 1.2 and 1.3 succeed and present the certificate from TLS_CERT_FILE', async () => {
    for (const { name, connect } of endpoints()) {
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        const result = await connect({ minVersion: version, maxVersion: version });
        assert.equal(result.protocol, version, name);
        assert.equal(result.fingerprint, expected, `${name} ${version}: wrong certificate`);
      }
    }
  });

  test('every TLS 1.2 cipher accepted on 465, 587 and 993 is forward-secret AEAD (Mozilla intermediate)', async (t) => {
    for (const endpoint of endpoints()) {
      const accepted = await acceptedTls12Ciphers(endpoint);
      t.diagnostic(`${endpoint.name}: ${accepted.join(' ')}`);
      assert.ok(accepted.includes('ECDHE-RSA-AES128-GCM-SHA256'), `${endpoint.name}: ECDHE-RSA-AES128-GCM-SHA256 not accepted (${accepted.join(' ')})`);
      const weak = accepted.filter((cipher) => !FORWARD_SECRET_AEAD.test(cipher));
      assert.deepEqual(weak, [], `${endpoint.name} accepts ciphers that are not forward-secret AEAD`);
    }
  });
});

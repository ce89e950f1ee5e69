// Hot reload: certificate and users change without a restart; a broken file is refused and the
// running configuration keeps working; SIGHUP reloads too, shown with nothing the file watcher sees.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, hashOf, processesIn, waitFor } from '../helpers/instance.ts';
import { SmtpClient, authenticated } from '../helpers/smtp.ts';

const dir = mkdtempSync('/tmp/rbreload-');
const certFile = `${dir}/cert.pem`;
const keyFile = `${dir}/key.pem`;
const usersFile = `${dir}/users`;

/** A new self-signed pair for `cn`, written to `cert`/`key` (each replaced by a rename); returns its fingerprint. */
function makeCertificate(days: string, cert = certFile, key = keyFile, cn = HOSTNAME): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', days, '-subj', `/CN=${cn}`, '-keyout', `${key}.new`, '-out', `${cert}.new`], { stdio: 'ignore' });
  renameSync(`${key}.new`, key);
  renameSync(`${cert}.new`, cert);
  return fingerprintOf(cert);
}

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

/** An open TLS session: implicit TLS, or STARTTLS after the SMTP dialogue; fails after 10 s. */
async function tlsSession(port: number, starttls: boolean): Promise<TLSSocket> {
  const socket = connectTcp({ host: '127.0.0.1', port });
  const timer = setTimeout(() => socket.destroy(new Error('no TLS session within 10 s')), 10_000);
  try {
    if (starttls) {
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        let step = 0;
        socket.once('error', reject);
        socket.once('close', () => reject(new Error(`closed during the SMTP dialogue: ${JSON.stringify(seen)}`)));
        socket.on('data', function onData(chunk) {
          seen += chunk;
          if (step === 0 && /^220 .*\r\n/m.test(seen)) {
            [step, seen] = [1, ''];
            socket.write('EHLO client.example\r\n');
          } else if (step === 1 && /^250 .*\r\n/m.test(seen)) {
            [step, seen] = [2, ''];
            socket.write('STARTTLS\r\n');
          } else if (step === 2 && /^220 /m.test(seen)) {
            socket.off('data', onData);
            socket.removeAllListeners('close');
            resolve();
          } else if (/^[45]\d\d .*\r\n/m.test(seen)) {
            reject(new Error(`refused: ${seen.trim()}`));
          }
        });
      });
    }
    const secure = connectTls({ socket, rejectUnauthorized: false, servername: HOSTNAME });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    return secure;
  } catch (error) {
    socket.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Postfix's smtpd processes of the instance that serve `port` (master.cf names each service by its address). */
function smtpdFor(box: Instance, port: number): number {
  return processesIn(box.stateDir)
    .map((p) => Number(p.split(' ')[0]))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').startsWith(`smtpd -n 127.0.0.1:${port} `);
      } catch {
        return false;
      }
    }).length;
}

/**
 * The certificate served on 465, 587 (STARTTLS) and 993, each seen by several sessions held open at
 * once: one more than the smtpd processes serving the port, so at least one session is served by an
 * smtpd started now (smtpd reads its certificate when it starts). A failed handshake shows as "error ...".
 */
/**
 * The certificate each session got. `every` opens one session more than the port has smtpd processes,
 * so that each process (and a new one) serves one; the quick look opens two per port. Polling must use
 * the quick look: each full look leaves one more idle smtpd, and Postfix refuses a 51st concurrent
 * session from one client (smtpd_client_connection_count_limit), the supervisor's probe included.
 */
async function served(box: Instance, every = true): Promise<Record<'465' | '587' | '993', string[]>> {
  const look = async (port: number, starttls: boolean, sessions: number) => {
    const results = await Promise.allSettled(Array.from({ length: sessions }, () => tlsSession(port, starttls)));
    const seen = results.map((r) => (r.status === 'fulfilled' ? r.value.getPeerX509Certificate()?.fingerprint256 ?? 'none' : `error ${(r.reason as NodeJS.ErrnoException).code ?? (r.reason as Error).message}`));
    for (const result of results) if (result.status === 'fulfilled') result.value.destroy();
    return seen;
  };
  const sessions = (port: number) => (every ? smtpdFor(box, port) + 1 : 2);
  return {
    '465': await look(box.ports.submissions, false, sessions(box.ports.submissions)),
    '587': await look(box.ports.submission, true, sessions(box.ports.submission)),
    '993': await look(box.ports.imaps, false, every ? 3 : 2),
  };
}

/** Polls with the quick look until `fingerprint` is served, then checks that every process serves it. */
async function waitServed(box: Instance, what: string, fingerprint: string): Promise<void> {
  await waitFor(what, 20_000, async () => (allServe(await served(box, false), fingerprint) ? true : undefined), 300);
  // A process of the old generation may still be finishing: a few full looks, not fifty.
  let seen = {};
  for (let attempt = 0; attempt < 5; attempt++) {
    seen = await served(box);
    if (allServe(seen, fingerprint)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.fail(`${what}: not every process serves it: ${JSON.stringify(seen)}`);
}

const allServe = (seen: Record<string, string[]>, fingerprint: string) => Object.values(seen).every((list) => list.every((fp) => fp === fingerprint));

async function authAs(box: Instance, user: string): Promise<number> {
  const { client, auth } = await authenticated(box.ports, user, { implicitTls: true });
  await client.quit();
  return auth.code;
}

const masterPids = (box: Instance) => [readFileSync(`${box.stateDir}/queue/pid/master.pid`, 'utf8').trim(), readFileSync(`${box.stateDir}/run/master.pid`, 'utf8').trim()];
const events = (box: Instance, event: string) => box.logs().filter((l) => l.event === event);

describe('hot reload', () => {
  let box: Instance;
  before(async () => {
    makeCertificate('30');
    writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\n`);
    box = await Instance.start({ MAIL_USERS: '', MAIL_USERS_FILE: usersFile, TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, AUTH_FAILURE_DELAY: '0' });
  });
  after(async () => {
    await box.destroy();
  });

  test('a replaced certificate is served on 465, 587 and 993 without a restart (same master pids), an open session survives', async () => {
    const pids = masterPids(box);
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    const old = fingerprintOf(certFile);
    assert.ok(allServe(await served(box), old), 'the first certificate is served everywhere');
    const expected = makeCertificate('60');
    await waitServed(box, 'the new certificate on 465, 587 and 993', expected);
    assert.deepEqual(masterPids(box), pids, `a master was restarted: ${JSON.stringify(events(box, 'daemon_restart'))}`);
    assert.equal((await client.cmd('NOOP')).code, 250, 'the open session was cut');
    await client.quit();
    assert.ok(events(box, 'reload').some((l) => String(l.trigger).includes(certFile)));
  });

  test('a certificate that does not match its key is refused and logged; the old one is still served, by new processes too', async () => {
    const good = fingerprintOf(certFile);
    const rejectedBefore = events(box, 'reload_rejected').length;
    const saved = readFileSync(certFile);
    makeCertificate('60', certFile, `${dir}/other-key.pem`); // a new certificate, but TLS_KEY_FILE is not its key
    try {
      await waitFor('the rejection in the log', 10_000, () => (events(box, 'reload_rejected').length > rejectedBefore ? true : undefined), 100);
      assert.match(JSON.stringify(events(box, 'reload_rejected').at(-1)!.errors), /TLS_KEY_FILE.*does not match the certificate/);
      const from = box.lines.length;
      const seen = await served(box);
      const warnings = box.lines.slice(from).filter((line) => /"level":(40|50)/.test(line) && line.includes('"service":"postfix"'));
      assert.ok(allServe(seen, good), `after the refused certificate, not every session got the running one: ${JSON.stringify(seen)}; Postfix said: ${warnings.join('\n')}`);
    } finally {
      const reloads = events(box, 'reload').length;
      writeFileSync(`${certFile}.new`, saved);
      renameSync(`${certFile}.new`, certFile);
      await waitFor('the good certificate reloaded', 10_000, () => events(box, 'reload').length > reloads || undefined, 100);
    }
  });

  test('a user added to MAIL_USERS_FILE can authenticate', async () => {
    assert.equal(await authAs(box, `dave@${DOMAIN}`), 535);
    writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\ndave@${DOMAIN}:${hashOf(PASSWORD)}\n`);
    await waitFor('dave to authenticate', 20_000, async () => ((await authAs(box, `dave@${DOMAIN}`)) === 235 ? true : undefined), 500);
  });

  test('a broken users file is refused and logged; the running users keep working', async () => {
    const before = events(box, 'reload_rejected').length;
    writeFileSync(usersFile, `alice@${DOMAIN}:{MD5}0123456789\n`);
    await waitFor('the rejection in the log', 10_000, () => (events(box, 'reload_rejected').length > before ? true : undefined), 200);
    const rejected = events(box, 'reload_rejected').at(-1)!;
    assert.match(JSON.stringify(rejected.errors), /MAIL_USERS_FILE.*unknown scheme \{MD5\}/);
    assert.equal(await authAs(box, `alice@${DOMAIN}`), 235);
    assert.equal(await authAs(box, `dave@${DOMAIN}`), 235);
  });

  test('a user removed from MAIL_USERS_FILE can no longer authenticate', async () => {
    writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\n`);
    await waitFor('dave to be gone', 20_000, async () => ((await authAs(box, `dave@${DOMAIN}`)) === 535 ? true : undefined), 500);
    assert.equal(await authAs(box, `alice@${DOMAIN}`), 235);
  });
});

describe('SIGHUP', () => {
  // No TLS_CERT_FILE: the self-signed certificate in STATE_DIR/tls is what a reload re-reads and the
  // file watcher (which watches only the *_FILE variables) never looks at. The watched token file
  // shows when the watcher has looked (its own reload) without noticing the certificate.
  const tokenFile = `${dir}/sighup-token`;
  let box: Instance;
  before(async () => {
    writeFileSync(tokenFile, 'sighup-token-0123456789abcdef\n');
    box = await Instance.start({ AUTH_FAILURE_DELAY: '0', SELFTEST_TOKEN_FILE: tokenFile });
  });
  after(async () => {
    await box.destroy();
  });

  test('with nothing changed on disk, SIGHUP reloads Postfix and Dovecot in place', async () => {
    const pids = masterPids(box);
    const from = box.lines.length;
    box.child!.kill('SIGHUP');
    await waitFor('a reload triggered by SIGHUP', 10_000, () => events(box, 'reload').find((l) => l.trigger === 'SIGHUP'), 100);
    await waitFor('both daemons to log their reload', 10_000, () => {
      const lines = box.lines.slice(from).map((line) => JSON.parse(line) as Record<string, unknown>);
      return (lines.some((l) => l.service === 'postfix' && /^reload -- version /.test(String(l.msg))) && lines.some((l) => l.service === 'dovecot' && /SIGHUP received - reloading configuration/.test(String(l.msg)))) || undefined;
    }, 100);
    assert.deepEqual(masterPids(box), pids, 'reloaded in place, not restarted');
    assert.deepEqual(events(box, 'reload').map((l) => l.trigger), ['SIGHUP'], 'only the SIGHUP reloaded');
  });

  test('a file only a reload re-reads: the generated certificate, replaced by hand, is renewed by SIGHUP and served on 465, 587 and 993', async () => {
    const cert = `${box.stateDir}/tls/cert.pem`;
    const key = `${box.stateDir}/tls/key.pem`;
    const original = fingerprintOf(cert);
    // A certificate that no longer names MAIL_HOSTNAME: a reload generates a fresh one for it.
    const stranger = makeCertificate('30', cert, key, 'stranger.example');
    const reloadsBefore = events(box, 'reload').length;
    box.child!.kill('SIGHUP');
    await waitFor('a reload triggered by SIGHUP', 10_000, () => events(box, 'reload').slice(reloadsBefore).find((l) => l.trigger === 'SIGHUP'), 100);
    const renewed = fingerprintOf(cert);
    assert.notEqual(renewed, stranger);
    assert.notEqual(renewed, original);
    assert.ok(new X509Certificate(readFileSync(cert)).checkHost(HOSTNAME), 'the renewed certificate names MAIL_HOSTNAME');
    await waitServed(box, 'the renewed certificate on 465, 587 and 993', renewed);
    // Control: a watched file changed now is the watcher's next look, after both certificate writes;
    // it must reload for that file alone (a watcher that saw the certificate would have said so).
    writeFileSync(tokenFile, 'sighup-token-changed-0123456789\n');
    await waitFor("the watcher's reload", 10_000, () => events(box, 'reload').slice(reloadsBefore).find((l) => String(l.trigger).startsWith('changed:')), 100);
    assert.deepEqual(events(box, 'reload').slice(reloadsBefore).map((l) => l.trigger), ['SIGHUP', `changed: ${tokenFile}`]);
  });
});

describe('hot reload of the selftest token', () => {
  test('a new SELFTEST_TOKEN_FILE reaches GET /selftest; the old token stops working', async () => {
    const tokenFile = `${dir}/selftest-token`;
    const [oldToken, newToken] = ['old-token-0123456789abcdef', 'new-token-0123456789abcdef'];
    writeFileSync(tokenFile, `${oldToken}\n`);
    const box = await Instance.start({ SELFTEST_TOKEN_FILE: tokenFile, AUTH_FAILURE_DELAY: '0' });
    const status = async (token: string) => (await fetch(box.url('/selftest'), { headers: { authorization: `Bearer ${token}` } })).status;
    try {
      assert.equal(await status(oldToken), 200);
      assert.equal(await status(newToken), 401);
      writeFileSync(tokenFile, `${newToken}\n`);
      await waitFor('the new token to be accepted', 20_000, async () => ((await status(newToken)) === 200 ? true : undefined), 300);
      assert.equal(await status(oldToken), 401);
    } finally {
      await box.destroy();
    }
  });
});

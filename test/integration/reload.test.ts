// Hot reload: certificate and users change without a restart; a broken file is refused and the
// running configuration keeps working; SIGHUP reloads too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as connectTls } from 'node:tls';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, hashOf, waitFor } from '../helpers/instance.ts';
import { SmtpClient } from '../helpers/smtp.ts';

const dir = mkdtempSync('/tmp/rbreload-');
const certFile = `${dir}/cert.pem`;
const keyFile = `${dir}/key.pem`;
const usersFile = `${dir}/users`;

function makeCertificate(days: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', days, '-subj', `/CN=${HOSTNAME}`, '-keyout', `${keyFile}.new`, '-out', `${certFile}.new`], { stdio: 'ignore' });
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certFile}.new`, certFile);
}

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function authAs(box: Instance, user: string): Promise<number> {
  const { client } = await SmtpClient.connect(box.ports.submissions, { tls: true });
  await client.ehlo();
  const reply = await client.authPlain(user, PASSWORD);
  await client.quit();
  return reply.code;
}

const masterPids = (box: Instance) => [readFileSync(`${box.stateDir}/queue/pid/master.pid`, 'utf8').trim(), readFileSync(`${box.stateDir}/run/master.pid`, 'utf8').trim()];

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

  test('a replaced certificate is served on 465 without a restart (same master pids), an open session survives', async () => {
    const pids = masterPids(box);
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    makeCertificate('60');
    const expected = new X509Certificate(readFileSync(certFile)).fingerprint256;
    await waitFor('the new certificate on 465', 20_000, async () => ((await servedFingerprint(box.ports.submissions)) === expected ? true : undefined), 300);
    assert.deepEqual(masterPids(box), pids);
    assert.equal((await client.cmd('NOOP')).code, 250, 'the open session was cut');
    await client.quit();
    assert.ok(box.logs().some((l) => l.event === 'reload'));
  });

  test('a user added to MAIL_USERS_FILE can authenticate', async () => {
    assert.equal(await authAs(box, `dave@${DOMAIN}`), 535);
    writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\ndave@${DOMAIN}:${hashOf(PASSWORD)}\n`);
    await waitFor('dave to authenticate', 20_000, async () => ((await authAs(box, `dave@${DOMAIN}`)) === 235 ? true : undefined), 500);
  });

  test('a broken users file is refused and logged; the running users keep working', async () => {
    const before = box.logs().filter((l) => l.event === 'reload_rejected').length;
    writeFileSync(usersFile, `alice@${DOMAIN}:{MD5}0123456789\n`);
    await waitFor('the rejection in the log', 10_000, () => (box.logs().filter((l) => l.event === 'reload_rejected').length > before ? true : undefined), 200);
    const rejected = box.logs().filter((l) => l.event === 'reload_rejected').at(-1)!;
    assert.match(JSON.stringify(rejected.errors), /MAIL_USERS_FILE.*unknown scheme \{MD5\}/);
    assert.equal(await authAs(box, `alice@${DOMAIN}`), 235);
    assert.equal(await authAs(box, `dave@${DOMAIN}`), 235);
  });

  test('SIGHUP reloads', async () => {
    writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\n`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    box.child!.kill('SIGHUP');
    await waitFor('a SIGHUP reload', 10_000, () => box.logs().find((l) => l.event === 'reload' && l.trigger === 'SIGHUP'), 200);
    await waitFor('dave to be gone', 20_000, async () => ((await authAs(box, `dave@${DOMAIN}`)) === 535 ? true : undefined), 500);
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

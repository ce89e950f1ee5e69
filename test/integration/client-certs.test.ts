// Client certificates on 587 and 465 (CLIENT_CA_FILE), with openssl-made certificates against the
// real Postfix: a certificate from the CA relays without AUTH as the account its CN names, with that
// account's sender addresses, header From: rule and sending limits; none, one from another CA, a
// self-signed one and a revoked one (revoked while running) are refused; an account in
// CLIENT_CERT_REQUIRED needs its own certificate beside its password.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { DOMAIN, hashOf, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { SmtpClient, message, type Reply } from '../helpers/smtp.ts';
import { swaks } from '../helpers/swaks.ts';
import { TestCa, type KeyPair } from '../helpers/test-ca.ts';

const PRINTER = `printer@${DOMAIN}`;
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const OUTSIDE = 'someone@outside.example';
const LIMIT = 9;

const tlsWith = (pair: KeyPair | undefined): ConnectionOptions => (pair ? { cert: readFileSync(pair.cert), key: readFileSync(pair.key) } : {});
const fingerprint = (pair: KeyPair) => new X509Certificate(readFileSync(pair.cert)).fingerprint256;

interface Attempt {
  /** The first reply that was not 2xx/3xx, or the end of DATA. */
  reply: Reply;
  stage: 'AUTH' | 'MAIL' | 'RCPT' | 'DATA';
}

/** One message over 587 (STARTTLS) or 465 with the given certificate, with AUTH only when `login` is given. */
async function send(box: Instance, pair: KeyPair | undefined, subject: string, options: { from?: string; headerFrom?: string; login?: string; implicitTls?: boolean } = {}): Promise<Attempt> {
  const tls = tlsWith(pair);
  const { client } = await SmtpClient.connect(options.implicitTls ? box.ports.submissions : box.ports.submission, { tls: options.implicitTls === true, tlsOptions: tls });
  try {
    await client.ehlo();
    if (!options.implicitTls) await client.starttls(tls);
    if (options.login) {
      const auth = await client.authPlain(options.login, PASSWORD);
      if (auth.code !== 235) return { reply: auth, stage: 'AUTH' };
    }
    const from = options.from ?? PRINTER;
    const mail = await client.cmd(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) return { reply: mail, stage: 'MAIL' };
    const rcpt = await client.cmd(`RCPT TO:<${OUTSIDE}>`);
    if (rcpt.code !== 250) return { reply: rcpt, stage: 'RCPT' };
    const data = await client.cmd('DATA');
    if (data.code !== 354) return { reply: data, stage: 'DATA' };
    const text = message(options.headerFrom ?? from, OUTSIDE, subject).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    return { reply: await client.cmd(`${text}.`), stage: 'DATA' };
  } finally {
    await client.quit().catch(() => client.destroy());
  }
}

const atSink = (box: Instance, subject: string) => box.sink.messages().filter((m) => m.includes(`Subject: ${subject}\r`) || m.includes(`Subject: ${subject}\n`));

describe('client certificates on the submission ports', () => {
  const ca = new TestCa('relaybox client CA');
  const other = new TestCa('another CA');
  const printer = ca.client(PRINTER);
  const printerSpare = ca.client(PRINTER);
  const bobs = ca.client(BOB);
  const foreign = other.client(PRINTER);
  const selfSigned = other.selfSigned(PRINTER);
  const dir = mkdtempSync('/tmp/rb-ccert-');
  const revokedFile = `${dir}/revoked.txt`;
  let box: Instance;

  before(async () => {
    writeFileSync(revokedFile, '# revoked client certificates\n');
    box = await Instance.start({
      MAIL_USERS: [ALICE, BOB, PRINTER].map((address) => `${address}:${hashOf(PASSWORD)}`).join('\n'),
      CLIENT_CA_FILE: ca.cert,
      CLIENT_CERT_REVOKED_FILE: revokedFile,
      CLIENT_CERT_REQUIRED: BOB,
      SEND_LIMIT_MESSAGES: String(LIMIT),
      SEND_SUSPEND_THRESHOLD: '0',
      AUTH_FAILURE_DELAY: '0',
    });
  });
  after(async () => {
    await box?.destroy();
    ca.remove();
    other.remove();
  });

  test('a certificate from CLIENT_CA_FILE relays without AUTH on 587 and on 465, as the account its CN names', async () => {
    for (const implicitTls of [false, true]) {
      const subject = `by-certificate-${implicitTls ? 465 : 587}`;
      const { reply, stage } = await send(box, printer, subject, { implicitTls });
      assert.equal(reply.code, 250, `${stage}: ${reply.text}`);
      const received = await waitFor(`${subject} at the upstream`, 20_000, () => atSink(box, subject)[0], 200);
      assert.match(received, /^DKIM-Signature: .*d=relaybox\.test/ms, 'signed like a login\'s message');
    }
    const relayed = box.logs().filter((l) => l.event === 'client_certificate_relay');
    assert.equal(relayed.length, 2, JSON.stringify(relayed));
    assert.ok(relayed.every((l) => l.account === PRINTER && String(l.fingerprint).replaceAll(':', '') === fingerprint(printer).replaceAll(':', '')), JSON.stringify(relayed));
  });

  test('swaks, a real client, relays with the certificate alone on 465 and 587; without it, not', async () => {
    for (const implicitTls of [true, false]) {
      const subject = `swaks-certificate-${implicitTls ? 465 : 587}`;
      const port = implicitTls ? box.ports.submissions : box.ports.submission;
      const sent = await swaks({ port, implicitTls, certificate: printer, from: PRINTER, to: OUTSIDE, data: message(PRINTER, OUTSIDE, subject) });
      assert.equal(sent.code, 0, sent.transcript);
      await waitFor(`${subject} at the upstream`, 20_000, () => atSink(box, subject)[0], 200);
      const refused = await swaks({ port, implicitTls, from: PRINTER, to: OUTSIDE, data: message(PRINTER, OUTSIDE, `${subject}-none`) });
      assert.notEqual(refused.code, 0);
      assert.match(refused.transcript, /^<~?\** *554 5\.7\.1 .*Access denied/m, refused.transcript);
    }
  });

  test('no certificate, one from another CA, a self-signed one: no relay (554 5.7.1 at RCPT)', async () => {
    for (const [name, pair] of [['none', undefined], ['another CA', foreign], ['self-signed', selfSigned]] as const) {
      const { reply, stage } = await send(box, pair, `refused-${name}`);
      assert.equal(stage, 'RCPT', `${name}: ${reply.code} ${reply.text}`);
      assert.equal(reply.code, 554, `${name}: ${reply.text}`);
      assert.match(reply.text, /5\.7\.1/);
    }
    assert.equal(box.logs().filter((l) => l.event === 'client_certificate_relay').length, 4, 'only the messages of the tests before relayed by certificate');
  });

  test("the certificate's account sends only as itself: another sender at RCPT, another header From: at the end of DATA", async () => {
    const envelope = await send(box, printer, 'not-my-sender', { from: ALICE });
    assert.equal(envelope.stage, 'RCPT');
    assert.equal(envelope.reply.code, 553, envelope.reply.text);
    assert.match(envelope.reply.text, /not owned by printer@/);
    const header = await send(box, printer, 'not-my-from', { headerFrom: ALICE });
    assert.equal(header.stage, 'DATA');
    assert.equal(header.reply.code, 550, header.reply.text);
    assert.match(header.reply.text, /Header From: refused: printer@\S+ may not send as alice@/);
  });

  test('a certificate added to CLIENT_CERT_REVOKED_FILE is refused from then on, without a restart; the others still relay', async () => {
    const before = await send(box, printerSpare, 'spare-before-revocation');
    assert.equal(before.reply.code, 250, `${before.stage}: ${before.reply.text}`);
    const reloads = box.logs().filter((l) => l.event === 'reload').length;
    appendFileSync(revokedFile, `${fingerprint(printerSpare)}\n`);
    await waitFor('the revocation reloaded', 15_000, () => box.logs().filter((l) => l.event === 'reload').length > reloads || undefined, 100);
    const revoked = await send(box, printerSpare, 'spare-after-revocation');
    assert.equal(revoked.stage, 'RCPT', `${revoked.reply.code} ${revoked.reply.text}`);
    assert.match(`${revoked.reply.code} ${revoked.reply.text}`, /^554 5\.7\.1 .*revoked/);
    assert.ok(box.logs().some((l) => l.event === 'client_certificate_refused' && l.reason === 'revoked' && l.account === PRINTER));
    const still = await send(box, printer, 'first-after-revocation');
    assert.equal(still.reply.code, 250, `${still.stage}: ${still.reply.text}`);
  });

  test('CLIENT_CERT_REQUIRED: its password alone does not relay, nor with another account\'s certificate; with its own it does; other logins need none', async () => {
    const alone = await send(box, undefined, 'bob-password-only', { login: BOB, from: BOB });
    assert.equal(alone.stage, 'RCPT');
    assert.match(`${alone.reply.code} ${alone.reply.text}`, /^530 5\.7\.0 .*client certificate/);
    const wrong = await send(box, printer, 'bob-with-printer-cert', { login: BOB, from: BOB });
    assert.equal(wrong.stage, 'RCPT');
    assert.equal(wrong.reply.code, 530, wrong.reply.text);
    const own = await send(box, bobs, 'bob-with-own-cert', { login: BOB, from: BOB });
    assert.equal(own.reply.code, 250, `${own.stage}: ${own.reply.text}`);
    const alice = await send(box, undefined, 'alice-password', { login: ALICE, from: ALICE });
    assert.equal(alice.reply.code, 250, `${alice.stage}: ${alice.reply.text}`);
  });

  test("the account's sending limit counts what its certificate sends", async () => {
    let last: Attempt | undefined;
    const accepted: string[] = [];
    for (let i = 0; i <= LIMIT; i++) {
      last = await send(box, printer, `limit-${i}`);
      if (last.reply.code !== 250) break;
      accepted.push(`limit-${i}`);
    }
    assert.ok(accepted.length < LIMIT, `at most ${LIMIT} messages an hour, with those sent before: ${accepted.length} more were accepted`);
    assert.equal(last!.stage, 'DATA');
    assert.match(`${last!.reply.code} ${last!.reply.text}`, /^451 4\.7\.1 .*Sending limit reached/);
  });
});

// The tutorial's flow against the real daemons: submission with STARTTLS + AUTH relays to the
// upstream; nobody else relays; port 25 takes mail for the local domains only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, Sink, waitFor } from '../helpers/instance.ts';
import { gauge, scrape } from '../helpers/metrics.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

const ALICE = `alice@${DOMAIN}`;
const OUTSIDE = 'someone@outside.example';

describe('authenticated relay', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start();
  });
  after(async () => {
    await box.destroy();
  });

  test('587: AUTH is offered only after STARTTLS, as PLAIN and LOGIN', async () => {
    const { client, greeting } = await SmtpClient.connect(box.ports.submission);
    assert.equal(greeting.code, 220);
    const plain = await client.ehlo();
    assert.equal(plain.code, 250);
    assert.ok(plain.lines.some((l) => /STARTTLS/.test(l)));
    assert.ok(!plain.lines.some((l) => /AUTH/.test(l)), `AUTH advertised before TLS: ${plain.text}`);
    const early = await client.authPlain(ALICE, PASSWORD);
    assert.equal(early.code, 530, `AUTH before STARTTLS must be refused: ${early.code} ${early.text}`);
    const secure = await client.starttls();
    assert.ok(secure.lines.some((l) => /AUTH PLAIN LOGIN|AUTH LOGIN PLAIN/.test(l)), secure.text);
    await client.quit();
  });

  test('587: right password 235 2.7.0, wrong password 535 5.7.8', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    const wrong = await client.authPlain(ALICE, 'not the password');
    assert.equal(wrong.code, 535);
    assert.equal(wrong.enhanced, '5.7.8');
    const right = await client.authPlain(ALICE, PASSWORD);
    assert.equal(right.code, 235);
    assert.equal(right.enhanced, '2.7.0');
    await client.quit();
  });

  test('587: without AUTH, relaying to an outside domain is refused 554 5.7.1', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    const { final } = await client.send(ALICE, [OUTSIDE], message(ALICE, OUTSIDE, 'unauthenticated'));
    assert.equal(final.code, 554, final.text);
    assert.equal(final.enhanced, '5.7.1');
    await client.quit();
  });

  test('587: after AUTH PLAIN the message is accepted and reaches the upstream', async () => {
    const before = box.sink.messages().length;
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
    const { final } = await client.send(ALICE, [OUTSIDE], message(ALICE, OUTSIDE, 'relayed-plain'));
    assert.equal(final.code, 250, final.text);
    await client.quit();
    const received = await waitFor('the sink to receive the message', 20_000, () => box.sink.messages().find((m) => m.includes('Subject: relayed-plain')));
    assert.match(received, /someone@outside\.example/);
    assert.equal(box.sink.messages().length, before + 1);
  });

  test('587: AUTH LOGIN works too', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    const reply = await client.authLogin(ALICE, PASSWORD);
    assert.equal(reply.code, 235, reply.text);
    const { final } = await client.send(ALICE, [OUTSIDE], message(ALICE, OUTSIDE, 'relayed-login'));
    assert.equal(final.code, 250, final.text);
    await client.quit();
    await waitFor('the sink to receive the message', 20_000, () => box.sink.messages().find((m) => m.includes('Subject: relayed-login')));
  });

  test('465: implicit TLS, AUTH and relay', async () => {
    const { client, greeting } = await SmtpClient.connect(box.ports.submissions, { tls: true });
    assert.equal(greeting.code, 220);
    const ehlo = await client.ehlo();
    assert.ok(ehlo.lines.some((l) => /AUTH/.test(l)), ehlo.text);
    assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
    const { final } = await client.send(ALICE, [OUTSIDE], message(ALICE, OUTSIDE, 'relayed-465'));
    assert.equal(final.code, 250, final.text);
    await client.quit();
    await waitFor('the sink to receive the message', 20_000, () => box.sink.messages().find((m) => m.includes('Subject: relayed-465')));
  });

  test('authenticated user sending as someone else is refused 553 5.7.1', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
    const before = box.sink.messages().length;
    const { final } = await client.send(`bob@${DOMAIN}`, [OUTSIDE], message(`bob@${DOMAIN}`, OUTSIDE, 'forged'));
    assert.equal(final.code, 553, final.text);
    assert.equal(final.enhanced, '5.7.1');
    assert.equal(box.sink.messages().length, before);
    await client.quit();
  });

  test('25: no AUTH offered, outside recipients refused 554 5.7.1, local recipients accepted', async () => {
    const { client } = await SmtpClient.connect(box.ports.smtp);
    const ehlo = await client.ehlo();
    assert.ok(!ehlo.lines.some((l) => /AUTH/.test(l)), ehlo.text);
    const secure = await client.starttls();
    assert.ok(!secure.lines.some((l) => /AUTH/.test(l)), `AUTH offered on 25 after TLS: ${secure.text}`);
    assert.equal((await client.cmd('MAIL FROM:<stranger@outside.example>')).code, 250);
    const relay = await client.cmd(`RCPT TO:<${OUTSIDE}>`);
    assert.equal(relay.code, 554, relay.text);
    assert.equal(relay.enhanced, '5.7.1');
    assert.match(relay.text, /Relay access denied/);
    const local = await client.cmd(`RCPT TO:<bob@${DOMAIN}>`);
    assert.equal(local.code, 250, local.text);
    await client.quit();
  });
});

describe('mail queued while the upstream is down', () => {
  test('is kept across a restart and retried at start, each message exactly once', async () => {
    const sink = await Sink.create(); // not started: the upstream is down
    const box = await Instance.start({}, { sink });
    try {
      const { client } = await SmtpClient.connect(box.ports.submission);
      await client.ehlo();
      await client.starttls();
      assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
      for (const n of [1, 2, 3]) assert.equal((await client.send(ALICE, [OUTSIDE], message(ALICE, OUTSIDE, `queued-${n}`))).final.code, 250);
      await client.quit();
      await waitFor('the deliveries to be deferred', 10_000, () => (box.logs().filter((l) => /status=deferred/.test(String(l.msg))).length >= 3 ? true : undefined), 100);
      // The deferred-queue gauge counts them (the queue manager moves each to deferred/ after the failed attempt).
      await waitFor('relaybox_queue_messages{queue="deferred"} 3', 10_000, async () => (gauge(await scrape(box.url('/metrics')), 'relaybox_queue_messages', { queue: 'deferred' }) === 3 ? true : undefined), 200);
      assert.equal(await box.stop(), 0);
      await sink.resume();
      box.launch();
      await box.waitReady();
      await waitFor('all three at the upstream', 30_000, () => (sink.messages().length >= 3 ? true : undefined), 200);
      await box.waitQueueEmpty(); // nothing left to deliver: no duplicate can still arrive
      for (const n of [1, 2, 3]) assert.equal(sink.messages().filter((m) => m.includes(`Subject: queued-${n}`)).length, 1);
      assert.equal(sink.messages().length, 3);
      assert.ok(box.logs().some((l) => l.event === 'queue_flush'));
      assert.equal(gauge(await scrape(box.url('/metrics')), 'relaybox_queue_messages', { queue: 'deferred' }), 0);
    } finally {
      await box.destroy();
    }
  });
});

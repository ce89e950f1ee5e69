// Role addresses: postmaster@ every local domain and MAIL_HOSTNAME (RFC 5321), abuse@ every local
// domain (RFC 2142) and a bare <postmaster> reach the postmaster (POSTMASTER_ADDRESS, by default the
// first user), who may answer from them. What relaybox generates itself (a bounce) is DKIM-signed
// (dkimpy verifies). Postfix's notices, which hold other users' mail (an undeliverable bounce),
// reach only an explicit POSTMASTER_ADDRESS; by default they are discarded and logged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { dkimpyVerify, publishedRecords } from '../helpers/dkimpy.ts';
import { maildirOf } from '../helpers/files.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream } from '../helpers/upstream.ts';

/** The messages delivered to a local user's INBOX (new/). */
const mailbox = (box: Instance, user: string) => maildirOf(box.stateDir, DOMAIN, user);

async function inbound(box: Instance, from: string, to: string, subject: string) {
  const { client } = await SmtpClient.connect(box.ports.smtp);
  await client.ehlo();
  const result = await client.send(from, [to], message(from, to, subject));
  await client.quit();
  return result.final;
}

/** A message submitted on 587 as `login`, with the role address as envelope and header From:. */
async function answerAs(box: Instance, login: string, address: string, subject: string) {
  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(login, PASSWORD)).code, 235);
    return (await client.send(address, ['reporter@outside.example'], message(address, 'reporter@outside.example', subject))).final;
  } finally {
    await client.quit();
  }
}

describe('postmaster', () => {
  let ca: TestCa;
  let upstream: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    upstream = await Upstream.start({ certificate: ca.issue('upstream.test'), rejectRecipients: /^(nobody|ghost)@outside\.example$/ });
    box = await Instance.start({ RELAY_HOST: `[127.0.0.1]:${upstream.port}`, MAIL_ALIASES: `forward@${DOMAIN}:nobody@outside.example`, SPAM_FILTER: 'off' });
  });
  after(async () => {
    await box.destroy();
    await upstream.stop();
    ca.remove();
  });

  test('postmaster@ the local domain (any case), postmaster@MAIL_HOSTNAME, abuse@ the domain and a bare <postmaster> reach the first user', async () => {
    const roles = [[`postmaster@${DOMAIN}`, 'pm-domain'], [`POSTMASTER@${DOMAIN.toUpperCase()}`, 'pm-upper'], ['postmaster', 'pm-bare'], [`postmaster@${HOSTNAME}`, 'pm-hostname'], [`abuse@${DOMAIN}`, 'abuse-domain']] as const;
    for (const [to, subject] of roles) {
      const reply = await inbound(box, 'reporter@outside.example', to, subject);
      assert.equal(reply.code, 250, `${to}: ${reply.text}`);
    }
    await waitFor('every role message in alice\'s mailbox', 20_000, () => (roles.every(([, s]) => mailbox(box, 'alice').some((m) => m.includes(`Subject: ${s}`))) ? true : undefined), 100);
    assert.ok(!upstream.messages.some((m) => m.to.some((to) => /postmaster|abuse/i.test(to))), 'nothing for the postmaster left through the upstream');
    // The host name is no mailbox domain: its other addresses are unknown, not relayed.
    const other = await inbound(box, 'reporter@outside.example', `alice@${HOSTNAME}`, 'not-a-mailbox');
    assert.equal(other.code, 550, other.text);
    assert.doesNotMatch(other.text, /Relay access denied/);
  });

  test('the postmaster answers as postmaster@ and abuse@ the domain (envelope and header From:, signed); another user may not', async () => {
    const records = await publishedRecords(box.env);
    for (const [address, subject] of [[`postmaster@${DOMAIN}`, 'answer-as-postmaster'], [`abuse@${DOMAIN}`, 'answer-as-abuse'], [`postmaster@${HOSTNAME}`, 'answer-as-host-postmaster']] as const) {
      const reply = await answerAs(box, `alice@${DOMAIN}`, address, subject);
      assert.equal(reply.code, 250, `${address}: ${reply.text}`);
      const relayed = await waitFor(`"${subject}" upstream`, 15_000, () => upstream.messages.find((m) => m.data.includes(`Subject: ${subject}`)), 100);
      const [signature] = dkimpyVerify(relayed.data, records);
      assert.equal(signature?.ok, true, `${subject}: ${JSON.stringify(signature)}`);
      assert.equal(signature?.domain, DOMAIN);
    }
    const bob = await answerAs(box, `bob@${DOMAIN}`, `postmaster@${DOMAIN}`, 'bob-as-postmaster');
    assert.equal(bob.code, 553, bob.text);
  });

  test('a bounce relaybox sends is DKIM-signed for the domain of MAIL_HOSTNAME', async () => {
    const records = await publishedRecords(box.env);
    assert.equal((await inbound(box, 'reporter@outside.example', `forward@${DOMAIN}`, 'bounce-me')).code, 250);
    const bounce = await waitFor('the bounce upstream', 30_000, () => upstream.messages.find((m) => m.from === '' && m.to.includes('reporter@outside.example') && m.data.includes('bounce-me')), 200);
    assert.match(bounce.data, new RegExp(`^From: .*MAILER-DAEMON@${HOSTNAME.replaceAll('.', '\\.')}`, 'm'));
    const [signature] = dkimpyVerify(bounce.data, records);
    assert.equal(signature?.ok, true, JSON.stringify(signature));
    assert.equal(signature?.domain, DOMAIN);
  });

  test('without POSTMASTER_ADDRESS an undeliverable bounce (other users\' mail) is discarded and logged, not sent to the first user', async () => {
    const reply = await inbound(box, 'ghost@outside.example', `forward@${DOMAIN}`, 'double-bounce');
    assert.equal(reply.code, 250, reply.text);
    const logged = await waitFor('the discard in the logs', 30_000, () => box.logs().find((l) => l.event === 'double_bounce_discarded'), 200);
    assert.equal(logged.recipient, 'ghost@outside.example');
    await box.waitQueueEmpty();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(!mailbox(box, 'alice').some((m) => m.includes('ghost@outside.example')), 'the first user got the double bounce');
  });
});

describe('POSTMASTER_ADDRESS', () => {
  test('an outside address: postmaster@ the local domain is relayed to it', async () => {
    const ca = new TestCa();
    const upstream = await Upstream.start({ certificate: ca.issue('upstream.test') });
    const box = await Instance.start({ RELAY_HOST: `[127.0.0.1]:${upstream.port}`, POSTMASTER_ADDRESS: 'boss@outside.example' });
    try {
      assert.equal((await inbound(box, 'reporter@outside.example', `postmaster@${DOMAIN}`, 'pm-outside')).code, 250);
      const relayed = await waitFor('the upstream to receive it', 20_000, () => upstream.messages.find((m) => m.data.includes('Subject: pm-outside')), 100);
      assert.deepEqual(relayed.to, ['boss@outside.example']);
      assert.equal(mailbox(box, 'alice').length, 0);
    } finally {
      await box.destroy();
      await upstream.stop();
      ca.remove();
    }
  });

  test('a local user set explicitly: gets Postfix\'s notice of an undeliverable bounce, and answers as postmaster@ (the first user may not)', async () => {
    const ca = new TestCa();
    const upstream = await Upstream.start({ certificate: ca.issue('upstream.test'), rejectRecipients: /^(nobody|ghost)@outside\.example$/ });
    const box = await Instance.start({ RELAY_HOST: `[127.0.0.1]:${upstream.port}`, POSTMASTER_ADDRESS: `bob@${DOMAIN}`, MAIL_ALIASES: `forward@${DOMAIN}:nobody@outside.example`, SPAM_FILTER: 'off' });
    try {
      assert.equal((await inbound(box, 'ghost@outside.example', `forward@${DOMAIN}`, 'double-bounce')).code, 250);
      const notice = await waitFor('the notice in bob\'s mailbox', 30_000, () => mailbox(box, 'bob').find((m) => /MAILER-DAEMON/.test(m) && m.includes('ghost@outside.example')), 200);
      assert.match(notice, /Subject: .*(Undelivered|Postmaster)/);
      assert.ok(!mailbox(box, 'alice').some((m) => m.includes('ghost@outside.example')));
      assert.equal((await answerAs(box, `bob@${DOMAIN}`, `abuse@${DOMAIN}`, 'bob-answers')).code, 250);
      assert.equal((await answerAs(box, `alice@${DOMAIN}`, `postmaster@${DOMAIN}`, 'alice-answers')).code, 553);
    } finally {
      await box.destroy();
      await upstream.stop();
      ca.remove();
    }
  });
});

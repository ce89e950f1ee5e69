// RFC 5321's postmaster: every local domain accepts postmaster@ (and a bare <postmaster>), and it,
// with Postfix's own notices (an undeliverable bounce here), reaches POSTMASTER_ADDRESS: by default
// the first user's mailbox, or an outside address through the upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, waitFor } from '../helpers/instance.ts';
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

describe('postmaster', () => {
  let ca: TestCa;
  let upstream: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    upstream = await Upstream.start({ certificate: ca.issue('upstream.test'), rejectRecipients: /^(nobody|ghost)@outside\.example$/ });
    box = await Instance.start({ RELAY_HOST: `[127.0.0.1]:${upstream.port}`, MAIL_ALIASES: `forward@${DOMAIN}:nobody@outside.example` });
  });
  after(async () => {
    await box.destroy();
    await upstream.stop();
    ca.remove();
  });

  test('postmaster@ the local domain, in any case, and a bare <postmaster> reach the first user', async () => {
    for (const [to, subject] of [[`postmaster@${DOMAIN}`, 'pm-domain'], [`POSTMASTER@${DOMAIN.toUpperCase()}`, 'pm-upper'], ['postmaster', 'pm-bare']] as const) {
      const reply = await inbound(box, 'reporter@outside.example', to, subject);
      assert.equal(reply.code, 250, `${to}: ${reply.text}`);
    }
    await waitFor('three messages in alice\'s mailbox', 20_000, () => (['pm-domain', 'pm-upper', 'pm-bare'].every((s) => mailbox(box, 'alice').some((m) => m.includes(`Subject: ${s}`))) ? true : undefined), 100);
    assert.ok(!upstream.messages.some((m) => m.to.some((to) => /postmaster/i.test(to))), 'nothing for the postmaster left through the upstream');
  });

  test("Postfix's notice of an undeliverable bounce goes to the postmaster", async () => {
    const reply = await inbound(box, 'ghost@outside.example', `forward@${DOMAIN}`, 'double-bounce');
    assert.equal(reply.code, 250, reply.text);
    const notice = await waitFor('the notice in alice\'s mailbox', 30_000, () => mailbox(box, 'alice').find((m) => /MAILER-DAEMON/.test(m) && m.includes('ghost@outside.example')), 200);
    assert.match(notice, /Subject: .*(Undelivered|Postmaster)/);
  });
});

describe('POSTMASTER_ADDRESS outside', () => {
  test('postmaster@ the local domain is relayed to that address', async () => {
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
});

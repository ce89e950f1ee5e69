// Mailboxes for the local domains: delivery over LMTP, aliases, quota, IMAP/IMAPS with the same
// credentials, and mail that survives a restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, hashOf, waitFor } from '../helpers/instance.ts';
import { ImapSession } from '../../src/protocol/session.ts';
import { SmtpClient, message, submit as submitAs } from '../helpers/smtp.ts';

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;

/** Alice submits (as `from`: her own address, or one she may not use). */
const submit = (box: Instance, from: string, to: string[], subject: string, body?: string) => submitAs(box.ports, ALICE, to, subject, { from, ...(body !== undefined ? { body } : {}) });

async function inbound(box: Instance, to: string, subject: string, body?: string) {
  const { client } = await SmtpClient.connect(box.ports.smtp);
  await client.ehlo();
  const result = await client.send('stranger@outside.example', [to], message('stranger@outside.example', to, subject, body));
  await client.quit();
  return result.final;
}

async function inboxOf(box: Instance, user: string): Promise<string[]> {
  const { client } = await ImapSession.connect(box.ports.imaps, { tls: true });
  const login = await client.login(user, PASSWORD);
  assert.equal(login.status, 'OK', login.text);
  const messages = await client.inbox();
  await client.logout();
  return messages;
}

const waitForMail = (box: Instance, user: string, subject: string) =>
  waitFor(`"${subject}" in ${user}'s INBOX`, 20_000, async () => (await inboxOf(box, user)).find((m) => m.includes(`Subject: ${subject}`)), 300);

describe('mailboxes and IMAP', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({
      MAIL_USERS: ["alice", "bob", "carol"].map((n) => `${n}@${DOMAIN}:${hashOf(PASSWORD)}`).join(" "),
      MAIL_ALIASES: `team@${DOMAIN}:bob@${DOMAIN},carol@${DOMAIN} sales@${DOMAIN}:alice@${DOMAIN} ext@${DOMAIN}:partner@outside.example`,
      MAILBOX_QUOTA: '40K',
    });
  });
  after(async () => {
    await box.destroy();
  });

  test('alice sends to bob through 587; bob reads it over IMAPS', async () => {
    assert.equal((await submit(box, ALICE, [BOB], 'local-submit')).code, 250);
    const mail = await waitForMail(box, BOB, 'local-submit');
    // Postfix's own trace header says the session authenticated (ESMTPSA); with SUBMITTER_PRIVACY
    // (the default) it is relaybox's hop alone, without the login. Nothing the test wrote says that.
    const headers = mail.slice(0, mail.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ').split('\r\n');
    assert.ok(
      headers.some((line) => /^Received: by mail\.relaybox\.test \(Postfix\) with ESMTPSA id \w+/.test(line)),
      `no Received header of an authenticated submission:\n${headers.join('\n')}`,
    );
    assert.ok(!headers.some((line) => /Authenticated sender/.test(line)), headers.join('\n'));
  });

  test('an outsider sends to bob on 25: delivered', async () => {
    assert.equal((await inbound(box, BOB, 'from-outside')).code, 250);
    await waitForMail(box, BOB, 'from-outside');
  });

  test('an unknown local recipient is refused at RCPT time: 550 5.1.1', async () => {
    const final = await inbound(box, `nobody@${DOMAIN}`, 'unknown');
    assert.equal(final.code, 550);
    assert.equal(final.enhanced, '5.1.1');
  });

  test('an alias delivers to every local target and relays to its remote target', async () => {
    assert.equal((await inbound(box, `team@${DOMAIN}`, 'to-team')).code, 250);
    await waitForMail(box, BOB, 'to-team');
    await waitForMail(box, `carol@${DOMAIN}`, 'to-team');
    assert.equal((await inbound(box, `ext@${DOMAIN}`, 'to-ext')).code, 250);
    const relayed = await waitFor('the remote alias target at the sink', 20_000, () => box.sink.messages().find((m) => m.includes('Subject: to-ext')));
    assert.match(relayed, /partner@outside\.example/);
  });

  test('alice may send as her alias, but not as bob or an alias of others', async () => {
    assert.equal((await submit(box, `sales@${DOMAIN}`, [BOB], 'as-alias')).code, 250);
    const asBob = await submit(box, BOB, [`carol@${DOMAIN}`], 'as-bob');
    assert.equal(asBob.code, 553);
    assert.equal(asBob.enhanced, '5.7.1');
    const asTeam = await submit(box, `team@${DOMAIN}`, [BOB], 'as-team');
    assert.equal(asTeam.code, 553);
  });

  test('IMAP on 143: no LOGIN before STARTTLS; after it the same credentials work', async () => {
    const { client, greeting } = await ImapSession.connect(box.ports.imap, { localAddress: '127.0.0.9' });
    assert.match(greeting, /^\* OK \[CAPABILITY [^\]]*STARTTLS[^\]]*LOGINDISABLED/);
    const early = await client.login(ALICE, PASSWORD);
    assert.equal(early.status, 'NO', early.text);
    await client.starttls();
    const login = await client.login(ALICE, PASSWORD);
    assert.equal(login.status, 'OK', login.text);
    await client.logout();
  });

  test('IMAP: a wrong password is refused', async () => {
    const { client } = await ImapSession.connect(box.ports.imaps, { tls: true });
    const login = await client.login(ALICE, 'not the password');
    assert.equal(login.status, 'NO');
    await client.logout();
  });

  test('MAILBOX_QUOTA: a message that would overfill the mailbox is refused at RCPT with 552 5.2.2', async () => {
    const big = 'y'.repeat(76).concat('\r\n').repeat(400); // ~31 kB, under the 40K quota
    assert.equal((await inbound(box, `carol@${DOMAIN}`, 'fill-1', big)).code, 250);
    await waitForMail(box, `carol@${DOMAIN}`, 'fill-1');
    const { client } = await SmtpClient.connect(box.ports.smtp);
    await client.ehlo();
    assert.equal((await client.cmd('MAIL FROM:<stranger@outside.example> SIZE=32000')).code, 250);
    const refused = await client.cmd(`RCPT TO:<carol@${DOMAIN}>`);
    assert.equal(refused.code, 552, refused.text);
    assert.equal(refused.enhanced, '5.2.2');
    assert.match(refused.text, /Mailbox is full/);
    const roomy = await client.cmd(`RCPT TO:<${BOB}>`);
    assert.equal(roomy.code, 250, 'another mailbox is unaffected');
    await client.quit();
  });

  test('mail survives a restart of the appliance on the same STATE_DIR', async () => {
    assert.equal(await box.stop(), 0);
    box.launch();
    await box.waitReady();
    const messages = await inboxOf(box, BOB);
    assert.ok(messages.some((m) => m.includes('Subject: local-submit')));
    assert.ok(messages.some((m) => m.includes('Subject: from-outside')));
  });
});

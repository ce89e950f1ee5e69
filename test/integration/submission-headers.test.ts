// What authenticated users send is signed only for what they may send as, and the signature covers
// what a reader sees: a header From: that is not the login's (any address of it, either envelope) is
// refused with 5.7.1 before it is queued; an added copy of a signed header breaks the signature
// (dkimpy verifies). Two clients: relaybox's own SMTP session and Debian's swaks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { dkimpyVerify, publishedRecords } from '../helpers/dkimpy.ts';
import { SmtpClient } from '../helpers/smtp.ts';

const OTHER = 'other.test';

/** The message as the upstream got it (smtp-sink puts its own envelope lines in front). */
const messageOf = (stored: string) => stored.slice(stored.search(/^(Received|DKIM-Signature|From):/m));

async function submit(box: Instance, login: string, envelope: string, data: string) {
  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    const auth = await client.authPlain(login, PASSWORD);
    assert.equal(auth.code, 235, auth.text);
    return (await client.send(envelope, ['bob@remote.example'], data)).final;
  } finally {
    await client.quit();
  }
}

const upstreamCopy = async (box: Instance, subject: string) => messageOf(await waitFor(`"${subject}" upstream`, 15_000, () => box.sink.messages().find((m) => m.includes(`Subject: ${subject}`))));

describe('signatures cover what a reader sees', () => {
  let box: Instance;
  let records: Map<string, string>;
  before(async () => {
    box = await Instance.start({ SPAM_FILTER: 'off' });
    records = await publishedRecords(box.env);
  });
  after(async () => {
    await box.destroy();
  });

  test('the signed copy verifies; a second Subject:, To:, Reply-To:, Date:, From: or List-Unsubscribe: put above it does not', async () => {
    const from = `alice@${DOMAIN}`;
    const data = `From: Alice <${from}>\r\nTo: <bob@remote.example>\r\nReply-To: <${from}>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nSubject: oversigned\r\nMessage-ID: <oversigned-${Date.now()}@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPay the invoice.\r\n`;
    assert.equal((await submit(box, from, from, data)).code, 250);
    const signed = await upstreamCopy(box, 'oversigned');
    const [original] = dkimpyVerify(signed, records);
    assert.equal(original?.ok, true, JSON.stringify(original));
    assert.equal(original?.domain, DOMAIN);
    for (const added of ['Subject: urgent: new bank details', 'To: <victim@remote.example>', 'Reply-To: <thief@evil.example>', 'Date: Wed, 2 Dec 2026 09:00:00 +0000', 'From: <ceo@evil.example>', 'List-Unsubscribe: <https://evil.example/u>']) {
      const [tampered] = dkimpyVerify(`${added}\r\n${signed}`, records);
      assert.equal(tampered?.ok, false, `still verifies with "${added}" added`);
    }
  });
});

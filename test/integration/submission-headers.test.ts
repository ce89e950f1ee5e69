// What authenticated users send is signed only for what they may send as, and the signature covers
// what a reader sees: a header From: that is not the login's (any address of it, either envelope) is
// refused with 5.7.1 before it is queued; an added copy of a signed header breaks the signature
// (dkimpy verifies). Two clients: relaybox's own SMTP session and Debian's swaks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { DOMAIN, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { dkimpyVerify, publishedRecords } from '../helpers/dkimpy.ts';
import { SmtpClient } from '../helpers/smtp.ts';
import { swaks } from '../helpers/swaks.ts';

const OTHER = 'other.test';

/** The message as the upstream got it (smtp-sink puts its own envelope lines in front). */
const messageOf = (stored: string) => stored.slice(stored.search(/^(Received|DKIM-Signature|From):/m));

async function submit(box: Instance, login: string, envelope: string, data: string): Promise<{ code: number; text: string }> {
  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    const auth = await client.authPlain(login, PASSWORD);
    assert.equal(auth.code, 235, auth.text);
    return (await client.send(envelope, ['bob@remote.example'], data)).final;
  } catch (error) {
    // "STARTTLS refused: 454 4.3.0 Try again later" while a milter is unreachable
    const text = (error as Error).message;
    const code = Number(/\b([45]\d\d) /.exec(text)?.[1] ?? 0);
    if (code === 0) throw error;
    return { code, text };
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

const mail = (from: string, subject: string, extra = '') => `From: ${from}\r\nTo: <bob@remote.example>\r\n${extra}Subject: ${subject}\r\nMessage-ID: <${subject}-${Date.now()}@client.example>\r\n\r\nFrom relaybox's tests.\r\n`;

describe('the header From: is bound to the login', () => {
  let box: Instance;
  let records: Map<string, string>;
  const alice = `alice@${DOMAIN}`;
  before(async () => {
    box = await Instance.start({ SPAM_FILTER: 'off', MAIL_DOMAINS: `${DOMAIN}, ${OTHER}`, MAIL_ALIASES: `sales@${DOMAIN}:${alice}\n@${OTHER}:bob@${DOMAIN}` });
    records = await publishedRecords(box.env);
  });
  after(async () => {
    await box.destroy();
  });

  test('a From: of another local and signed domain is refused with 5.7.1 for MAIL FROM:<alice> and for MAIL FROM:<>, by either client; nothing is queued', async () => {
    const own = await submit(box, alice, alice, mail('CEO <ceo@other.test>', 'forged-own-envelope'));
    assert.equal(own.code, 550, own.text);
    assert.match(own.text, /^5\.7\.1 .*ceo@other\.test/);
    const nullEnvelope = await submit(box, alice, '', mail('ceo@other.test', 'forged-null-envelope'));
    assert.equal(nullEnvelope.code, 550, nullEnvelope.text);
    for (const [from, envelope, subject] of [['CEO <ceo@other.test>', alice, 'swaks-forged'], ['"Alice" <ceo@other.test>', '', 'swaks-forged-null']] as const) {
      const result = await swaks({ port: box.ports.submission, user: alice, password: PASSWORD, from: envelope, to: 'bob@remote.example', data: mail(from, subject) });
      assert.notEqual(result.code, 0, result.transcript);
      assert.match(result.dataReply, /^550[ -]5\.7\.1 /, result.transcript);
    }
    const implicit = await swaks({ port: box.ports.submissions, implicitTls: true, user: alice, password: PASSWORD, from: alice, to: 'bob@remote.example', data: mail('<ceo@other.test>', 'swaks-forged-465') });
    assert.match(implicit.dataReply, /^550[ -]5\.7\.1 /, implicit.transcript);
    const several = await submit(box, alice, alice, `From: <${alice}>\r\n${mail('<ceo@other.test>', 'two-from-headers')}`);
    assert.equal(several.code, 550, several.text);
    const mixed = await submit(box, alice, alice, mail(`<${alice}>, <bob@${DOMAIN}>`, 'one-foreign-address'));
    assert.equal(mixed.code, 550, mixed.text);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.ok(!box.sink.messages().some((m) => /forged|two-from|one-foreign/.test(m)), 'a refused message reached the upstream');
    assert.ok(box.logs().some((l) => l.event === 'header_from_refused' && l.user === alice));
    const metrics = await waitFor('the refusals counted', 10_000, async () => {
      const text = await (await fetch(box.url('/metrics'))).text();
      const count = Number(/^relaybox_smtp_rejections_total\{reason="header_from"\} (\d+)/m.exec(text)?.[1] ?? 0);
      return count >= 7 ? count : undefined;
    }, 200);
    assert.ok(metrics >= 7);
  });

  test('the own address (display name, +extension), an alias of the login, either envelope: accepted and signed for the domain', async () => {
    const cases = [
      [`"Alice Example" <${alice}>`, alice, 'own-display-name'],
      [`=?utf-8?q?Al=C3=AFce?= <alice+news@${DOMAIN}>`, '', 'own-extension-null-envelope'],
      [`Sales (the team) <sales@${DOMAIN}>`, alice, 'alias-of-login'],
    ] as const;
    for (const [from, envelope, subject] of cases) {
      const reply = await submit(box, alice, envelope, mail(from, subject));
      assert.equal(reply.code, 250, `${from}: ${reply.text}`);
    }
    const viaSwaks = await swaks({ port: box.ports.submission, user: alice, password: PASSWORD, from: alice, to: 'bob@remote.example', data: mail(`Alice <${alice}>`, 'swaks-own') });
    assert.equal(viaSwaks.code, 0, viaSwaks.transcript);
    for (const subject of [...cases.map((c) => c[2]), 'swaks-own']) {
      const [signature] = dkimpyVerify(await upstreamCopy(box, subject), records);
      assert.equal(signature?.ok, true, `${subject}: ${JSON.stringify(signature)}`);
      assert.equal(signature?.domain, DOMAIN);
    }
  });

  test('several messages in one session are each judged on their own (refused, accepted, refused)', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    try {
      await client.ehlo();
      await client.starttls();
      assert.equal((await client.authPlain(alice, PASSWORD)).code, 235);
      const first = await client.send(alice, ['bob@remote.example'], mail('<ceo@other.test>', 'session-forged-1'));
      assert.equal(first.final.code, 550, first.final.text);
      await client.cmd('RSET');
      const second = await client.send(alice, ['bob@remote.example'], mail(`<${alice}>`, 'session-own'));
      assert.equal(second.final.code, 250, second.final.text);
      const third = await client.send('', ['bob@remote.example'], mail('<ceo@other.test>', 'session-forged-2'));
      assert.equal(third.final.code, 550, third.final.text);
    } finally {
      await client.quit();
    }
    await upstreamCopy(box, 'session-own');
    assert.ok(!box.sink.messages().some((m) => m.includes('session-forged')));
  });

  test('bob may not send as alice, nor as an address of the catch-all that leads to him', async () => {
    const bob = `bob@${DOMAIN}`;
    for (const from of [`<${alice}>`, `<anyone@${OTHER}>`]) {
      const reply = await submit(box, bob, bob, mail(from, 'bob-forges'));
      assert.equal(reply.code, 550, `${from}: ${reply.text}`);
    }
  });

  test('the milter socket removed: submission gets 451/454 (never unchecked mail), /ready names the check, then it listens again', async () => {
    rmSync(`${box.stateDir}/queue/private/relaybox-milter`);
    const during = await submit(box, alice, alice, mail('CEO <ceo@other.test>', 'while-the-milter-is-gone'));
    assert.ok([451, 454].includes(during.code), `${during.code} ${during.text}`);
    const failing = await waitFor('/ready to fail', 20_000, async () => {
      const ready = await box.get('/ready');
      return ready.status === 503 ? ready.body : undefined;
    }, 100);
    assert.equal((failing.checks as Record<string, { ok: boolean }>)['header-from-milter']?.ok, false, JSON.stringify(failing.checks));
    await box.waitReady(30_000);
    assert.equal((await submit(box, alice, alice, mail('CEO <ceo@other.test>', 'after-the-milter-is-back'))).code, 550);
    assert.equal((await submit(box, alice, alice, mail(`<${alice}>`, 'own-after-the-milter-is-back'))).code, 250);
    assert.ok(!box.sink.messages().some((m) => /while-the-milter-is-gone|after-the-milter-is-back/.test(m) && !m.includes('own-after')));
  });
});

describe('send-as rights follow a reload', () => {
  test('an alias added to MAIL_ALIASES_FILE lets its user send as it (envelope and header From:) without a restart', async () => {
    const aliasesFile = `/tmp/rb-aliases-${process.pid}-${Date.now()}`;
    const alice = `alice@${DOMAIN}`;
    const support = `support@${DOMAIN}`;
    writeFileSync(aliasesFile, `# none yet\n`);
    const box = await Instance.start({ SPAM_FILTER: 'off', MAIL_ALIASES_FILE: aliasesFile });
    try {
      assert.equal((await submit(box, alice, alice, mail(`Support <${support}>`, 'support-before'))).code, 550);
      writeFileSync(aliasesFile, `${support}:${alice}\n`);
      // Postfix's smtpd processes take the new envelope table as they are replaced after the reload.
      await waitFor('the alias to take effect', 20_000, async () => ((await submit(box, alice, support, mail(`Support <${support}>`, `support-after-${Date.now()}`)).catch(() => ({ code: 0 }))).code === 250 ? true : undefined), 500);
      assert.equal((await submit(box, alice, alice, mail(`Support <${support}>`, 'support-header-only'))).code, 250);
      assert.equal((await submit(box, `bob@${DOMAIN}`, `bob@${DOMAIN}`, mail(`<${support}>`, 'bob-as-support'))).code, 550);
    } finally {
      await box.destroy();
      rmSync(aliasesFile, { force: true });
    }
  });
});

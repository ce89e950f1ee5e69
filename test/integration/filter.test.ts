// The content filter in front of inbound mail (rspamd on port 25) against the real daemons, with
// SPF, DKIM and DMARC records served by a DNS server on loopback. Authenticated submissions are
// signed and never scanned; while the filter is down port 25 answers 451 and submission still works.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { newDkimKey } from '../../src/host/dkim-keys.ts';
import { publicKeyOf } from '../../src/dns/records.ts';
import { DOMAIN, Instance, waitFor } from '../helpers/instance.ts';
import { DnsServer } from '../helpers/dns-server.ts';
import { maildirOf } from '../helpers/files.ts';
import { SmtpClient, message, submit, type Reply } from '../helpers/smtp.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
/** Outside senders connect from here: not loopback's 127.0.0.1, and the address their SPF names. */
const SENDER_IP = '127.0.0.3';

/** The messages delivered to a local user's INBOX (new/). */
const mailbox = (box: Instance, user: string) => maildirOf(box.stateDir, DOMAIN, user);

async function inbound(box: Instance, from: string, raw: string): Promise<Reply> {
  const { client } = await SmtpClient.connect(box.ports.smtp, { localAddress: SENDER_IP });
  try {
    await client.ehlo(`mail.${from.split('@')[1]}`);
    return (await client.send(from, [`alice@${DOMAIN}`], raw)).final;
  } finally {
    await client.quit();
  }
}

const submission = async (box: Instance, subject: string, body: string): Promise<number> => (await submit(box.ports, `alice@${DOMAIN}`, ['bob@remote.example'], subject, { body })).code;

const filterUp = async (box: Instance) => ((await box.get('/ready')).body.checks as Record<string, { ok: boolean }>).filter?.ok === true;

describe('content filter on port 25', () => {
  let dns: DnsServer;
  let box: Instance;
  let senderKey: string;
  before(async () => {
    dns = await DnsServer.start();
    senderKey = await newDkimKey();
    // sender.test signs and publishes SPF for the test sender's address; strict.test publishes
    // DMARC p=reject and an SPF that allows nobody.
    dns.set('sender.test', { TXT: [`v=spf1 ip4:${SENDER_IP} -all`], MX: [[10, 'mail.sender.test']], A: [SENDER_IP] });
    dns.set('mail.sender.test', { A: [SENDER_IP] });
    dns.set('sel._domainkey.sender.test', { TXT: [`v=DKIM1; k=rsa; p=${publicKeyOf(senderKey)}`] });
    dns.set('_dmarc.sender.test', { TXT: ['v=DMARC1; p=reject'] });
    dns.set('strict.test', { TXT: ['v=spf1 -all'] });
    dns.set('_dmarc.strict.test', { TXT: ['v=DMARC1; p=reject'] });
    box = await Instance.start({ DNS_SERVERS: dns.address });
    await waitFor('the filter to be up', 60_000, async () => ((await filterUp(box)) ? true : undefined), 200);
  });
  after(async () => {
    await box.destroy();
    await dns.stop();
  });

  test('GTUBE is refused at the end of DATA with 554 5.7.1, and nothing is delivered', async () => {
    const reply = await inbound(box, 'news@sender.test', message('news@sender.test', `alice@${DOMAIN}`, 'gtube-inbound', GTUBE));
    assert.equal(reply.code, 554);
    assert.equal(reply.enhanced, '5.7.1');
    assert.ok(!mailbox(box, 'alice').some((m) => m.includes('gtube-inbound')));
  });

  test('a From: domain with DMARC p=reject, no valid signature and no SPF pass is refused', async () => {
    const reply = await inbound(box, 'ceo@strict.test', message('ceo@strict.test', `alice@${DOMAIN}`, 'dmarc-reject', 'Please wire the money.'));
    assert.equal(reply.code, 554, reply.text);
    assert.ok(!mailbox(box, 'alice').some((m) => m.includes('dmarc-reject')));
    // Refused because of the DMARC policy: this message's SPF failure and hostname symbols alone score
    // past SPAM_REJECT_SCORE, so rspamd's verdict must say the action was forced by DMARC.
    const verdict = await waitFor("rspamd's verdict on the message", 10_000, () => box.logs().find((l) => l.service === 'rspamd' && /rspamd_task_write_log/.test(String(l.msg)) && String(l.msg).includes('dmarc-reject-')));
    assert.match(String(verdict.msg), /DMARC_POLICY_REJECT/);
    assert.match(String(verdict.msg), /forced: reject "Action set by DMARC"/);
  });

  test('a clean message with a valid signature arrives with Authentication-Results dkim=pass, spf=pass, dmarc=pass', async () => {
    const raw = `Date: ${new Date().toUTCString()}\r\n${message('news@sender.test', `alice@${DOMAIN}`, 'signed-inbound', 'A newsletter, signed by its sender.')}`;
    // An independent signer (mailauth) stands for the sending domain's own MTA.
    const { signatures } = await dkimSign(raw, { signatureData: [{ signingDomain: 'sender.test', selector: 'sel', privateKey: senderKey }] } as never);
    assert.match(signatures, /^DKIM-Signature:/);
    const reply = await inbound(box, 'news@sender.test', signatures + raw);
    assert.equal(reply.code, 250, reply.text);
    const delivered = await waitFor('delivery to the mailbox', 15_000, () => mailbox(box, 'alice').find((m) => m.includes('signed-inbound')));
    const results = /^Authentication-Results: [^\n]*(?:\n[ \t][^\n]*)*/m.exec(delivered)?.[0] ?? '';
    assert.match(results, /dkim=pass header\.d=sender\.test/);
    assert.match(results, /spf=pass/);
    assert.match(results, /dmarc=pass/);
    assert.doesNotMatch(delivered, /^X-Spam: Yes/m);
    const metrics = await (await fetch(box.url('/metrics'))).text();
    assert.match(metrics, /^relaybox_filter_scans_total\{action="no action"\} [1-9]/m);
  });

  test('an authenticated submission containing GTUBE is relayed, signed, and not scanned', async () => {
    assert.equal(await submission(box, 'gtube-submitted', GTUBE), 250);
    const upstream = await waitFor('the upstream copy', 15_000, () => box.sink.messages().find((m) => m.includes('gtube-submitted')));
    assert.match(upstream, /^DKIM-Signature: .*d=relaybox\.test/m);
    assert.doesNotMatch(upstream, /^(X-Spam|X-Spamd-Result|X-Spam-Status|Authentication-Results):/im);
  });

  test('with the filter down, port 25 answers 451 4.7.1, 587 still relays, /ready stays 200 and names it', async () => {
    const conf = `${box.stateDir}/rspamd/rspamd.conf`;
    const good = readFileSync(conf, 'utf8');
    writeFileSync(conf, 'this is { not rspamd\n');
    const { body } = await box.get('/health');
    process.kill((body.daemons as Record<string, { pid: number }>).rspamd!.pid, 'SIGKILL');
    await waitFor('the filter to be down', 10_000, async () => ((await filterUp(box)) ? undefined : true), 100);

    const refused = await inbound(box, 'news@sender.test', message('news@sender.test', `alice@${DOMAIN}`, 'while-the-filter-is-down'));
    assert.equal(refused.code, 451);
    assert.equal(refused.enhanced, '4.7.1');
    assert.equal(await submission(box, 'relayed-without-the-filter', 'Submission does not wait for the filter.'), 250);
    const ready = await box.get('/ready');
    assert.equal(ready.status, 200);
    assert.ok((ready.body.degraded as string[]).some((line) => line.startsWith('rspamd') || line.startsWith('filter')), JSON.stringify(ready.body.degraded));

    writeFileSync(conf, good);
    await waitFor('the filter to be back', 60_000, async () => ((await filterUp(box)) ? true : undefined), 200);
    assert.equal((await inbound(box, 'news@sender.test', message('news@sender.test', `alice@${DOMAIN}`, 'after-the-filter-is-back'))).code, 250);
  });
});

describe('no filter', () => {
  test('a relay-only configuration (no MAIL_DOMAINS) runs no rspamd, and SPAM_FILTER=off turns it off', async () => {
    const relayOnly = { MAIL_DOMAINS: '', MAIL_USERS: '', MAIL_HOSTNAME: 'relay.example' };
    for (const env of [relayOnly, { SPAM_FILTER: 'off' }]) {
      const box = await Instance.start(env);
      try {
        const { body } = await box.get('/ready');
        assert.equal((body.daemons as Record<string, unknown>).rspamd, undefined);
        assert.equal((body.checks as Record<string, unknown>).filter, undefined);
      } finally {
        await box.destroy();
      }
    }
  });
});

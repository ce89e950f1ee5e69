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
/** The one address in TRUSTED_NETWORKS, and a neighbour that is not. */
const TRUSTED = '127.0.0.42';
const UNTRUSTED = '127.0.0.43';

/** The messages delivered to a local user's INBOX (new/). */
const mailbox = (box: Instance, user: string) => maildirOf(box.stateDir, DOMAIN, user);

/** A message on port 25 from `localAddress` (the outside sender's by default) to alice, or to `to`. */
async function inbound(box: Instance, from: string, raw: string, localAddress = SENDER_IP, to = `alice@${DOMAIN}`): Promise<Reply> {
  const { client } = await SmtpClient.connect(box.ports.smtp, { localAddress });
  try {
    await client.ehlo(`mail.${from.split('@')[1]}`);
    return (await client.send(from, [to], raw)).final;
  } finally {
    await client.quit();
  }
}

/** rspamd's verdict line on the message whose subject (and so Message-ID) is `subject`. */
const verdictOf = (box: Instance, subject: string) =>
  waitFor(`rspamd's verdict on ${subject}`, 10_000, () => box.logs().find((l) => l.service === 'rspamd' && /rspamd_task_write_log/.test(String(l.msg)) && String(l.msg).includes(`<${subject}-`))).then((l) => String(l.msg));
/** The score in a verdict line ("(default: F (no action): [2.60/15.00] ..."). */
const scoreIn = (verdict: string) => Number(/\(default: [FTS] \([a-z ]+\): \[(-?\d+\.\d+)\//.exec(verdict)?.[1]);
const delivered = (box: Instance, subject: string) => waitFor(`${subject} in the mailbox`, 15_000, () => mailbox(box, 'alice').find((m) => m.includes(`Subject: ${subject}\r\n`) || m.includes(`Subject: ${subject}\n`)));

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
    // quarantine.test: DMARC p=quarantine with an SPF that passes nobody (neutral); spfonly.test: SPF -all, no DMARC.
    dns.set('quarantine.test', { TXT: ['v=spf1 ?all'] });
    dns.set('_dmarc.quarantine.test', { TXT: ['v=DMARC1; p=quarantine'] });
    dns.set('spfonly.test', { TXT: ['v=spf1 -all'] });
    box = await Instance.start({ DNS_SERVERS: dns.address, TRUSTED_NETWORKS: `${TRUSTED}/32` });
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

  /** A newsletter signed for sender.test by an independent signer (mailauth), standing for the sending domain's own MTA. */
  async function signedNewsletter(subject: string): Promise<string> {
    const raw = `Date: ${new Date().toUTCString()}\r\n${message('news@sender.test', `alice@${DOMAIN}`, subject, 'A newsletter, signed by its sender.')}`;
    const { signatures } = await dkimSign(raw, { signatureData: [{ signingDomain: 'sender.test', selector: 'sel', privateKey: senderKey }] } as never);
    assert.match(signatures, /^DKIM-Signature:/);
    return signatures + raw;
  }

  test('a clean message with a valid signature arrives with Authentication-Results dkim=pass, spf=pass, dmarc=pass', async () => {
    const reply = await inbound(box, 'news@sender.test', await signedNewsletter('signed-inbound'));
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

  test('DMARC p=quarantine: delivered, and marked X-Spam: Yes by the policy whatever the score', async () => {
    const reply = await inbound(box, 'ceo@quarantine.test', message('ceo@quarantine.test', `alice@${DOMAIN}`, 'dmarc-quarantine', 'The quarterly figures.'));
    assert.equal(reply.code, 250, reply.text);
    assert.match(await delivered(box, 'dmarc-quarantine'), /^X-Spam: Yes/m);
    const verdict = await verdictOf(box, 'dmarc-quarantine');
    assert.match(verdict, /DMARC_POLICY_QUARANTINE/);
    assert.match(verdict, /forced: add header "Action set by DMARC"/);
  });

  test('SPAM_HEADER_SCORE and SPAM_REJECT_SCORE are the thresholds rspamd applies', async () => {
    // Two messages scored at the defaults (6 and 15): a signed newsletter below 6, an SPF failure between them.
    const failing = (subject: string) => message('offers@spfonly.test', `alice@${DOMAIN}`, subject, 'An offer you cannot refuse.');
    assert.equal((await inbound(box, 'news@sender.test', await signedNewsletter('score-low-default'))).code, 250);
    assert.equal((await inbound(box, 'offers@spfonly.test', failing('score-high-default'))).code, 250);
    const low = scoreIn(await verdictOf(box, 'score-low-default'));
    const high = scoreIn(await verdictOf(box, 'score-high-default'));
    assert.ok(low > 0.5 && low < 6 && high >= 6 && high < 15 && high - low > 1, `scores ${low} and ${high}`);
    assert.doesNotMatch(await delivered(box, 'score-low-default'), /^X-Spam:/m);
    assert.match(await delivered(box, 'score-high-default'), /^X-Spam: Yes/m);

    // Thresholds just below each score: the newsletter is marked, the SPF failure refused.
    const tuned = await Instance.start({ DNS_SERVERS: dns.address, SPAM_HEADER_SCORE: (low - 0.5).toFixed(2), SPAM_REJECT_SCORE: (high - 0.5).toFixed(2) });
    try {
      await waitFor('the filter to be up', 60_000, async () => ((await filterUp(tuned)) ? true : undefined), 200);
      assert.equal((await inbound(tuned, 'news@sender.test', await signedNewsletter('score-low-tuned'))).code, 250);
      assert.match(await delivered(tuned, 'score-low-tuned'), /^X-Spam: Yes/m);
      const refused = await inbound(tuned, 'offers@spfonly.test', failing('score-high-tuned'));
      assert.equal(refused.code, 554, refused.text);
      assert.equal(refused.enhanced, '5.7.1');
      const verdict = await verdictOf(tuned, 'score-high-tuned');
      assert.match(verdict, new RegExp(`\\(reject\\): \\[${high.toFixed(2)}/${(high - 0.5).toFixed(2)}\\]`));
      assert.doesNotMatch(verdict, /forced:/);
    } finally {
      await tuned.destroy();
    }
  });

  test('TRUSTED_NETWORKS relay on 25 without AUTH, signed and not scanned; other addresses may not relay', async () => {
    const raw = message(`alice@${DOMAIN}`, 'x@remote.example', 'trusted-relay', GTUBE);
    const relayed = await inbound(box, `alice@${DOMAIN}`, raw, TRUSTED, 'x@remote.example');
    assert.equal(relayed.code, 250, relayed.text);
    const upstream = await waitFor('the upstream copy', 15_000, () => box.sink.messages().find((m) => m.includes('Subject: trusted-relay')));
    assert.match(upstream, /^DKIM-Signature: .*d=relaybox\.test/m);
    assert.doesNotMatch(upstream, /^(X-Spam|X-Spamd-Result|X-Spam-Status|Authentication-Results):/im);
    assert.ok(!box.logs().some((l) => l.service === 'rspamd' && String(l.msg).includes('<trusted-relay-')), 'rspamd scanned mail from TRUSTED_NETWORKS');
    const refused = await inbound(box, 'someone@outside.example', message('someone@outside.example', 'x@remote.example', 'untrusted-relay'), UNTRUSTED, 'x@remote.example');
    assert.equal(refused.code, 554, refused.text);
    assert.match(refused.text, /Relay access denied/);
    // The trusted client's own sender, from elsewhere: refused at MAIL (README "Mail correctness").
    const local = await inbound(box, `alice@${DOMAIN}`, message(`alice@${DOMAIN}`, 'x@remote.example', 'untrusted-relay'), UNTRUSTED, 'x@remote.example');
    assert.equal(local.code, 550, local.text);
    assert.match(local.text, /5\.7\.1 .*must authenticate/);
    assert.ok(!box.sink.messages().some((m) => m.includes('Subject: untrusted-relay')));
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

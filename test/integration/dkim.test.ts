// DKIM signing against the real daemons: what relaybox sends is signed by OpenDKIM, and an
// independent verifier (mailauth) accepts the signature against the record `relaybox dns` prints,
// served by a DNS server on loopback. A signer that is down means 451, never unsigned mail.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DOMAIN, Instance, PASSWORD, runCli, waitFor } from '../helpers/instance.ts';
import { DnsServer } from '../helpers/dns-server.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

/** The zone-file lines `relaybox dns` printed, as name → TXT value. */
function printedTxt(output: string): Map<string, string> {
  const records = new Map<string, string>();
  for (const line of output.split('\n')) {
    const match = /^(\S+)\.\s+\d+ IN TXT\s+(.*)$/.exec(line);
    if (match) records.set(match[1]!, [...match[2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join(''));
  }
  return records;
}

/** Verifies every DKIM signature of a message against the loopback DNS. */
async function verify(raw: string, dns: DnsServer) {
  const resolver = new Resolver();
  resolver.setServers([dns.address]);
  const resolve = async (name: string, type: string) => (type === 'TXT' ? resolver.resolveTxt(name) : resolver.resolve(name, type as 'A'));
  const { results } = await dkimVerify(Buffer.from(raw.replace(/\r?\n/g, '\r\n')), { resolver: resolve as never });
  return results.map((r) => ({ result: r.status.result, domain: r.signingDomain, selector: r.selector, ...(r.status.comment ? { comment: r.status.comment } : {}) }));
}

/** The message as the upstream got it (smtp-sink puts its own envelope lines in front). */
const messageOf = (stored: string) => stored.slice(stored.search(/^(Received|DKIM-Signature|From):/m));

async function submit(box: Instance, subject: string, body = 'Signed by relaybox.'): Promise<{ code: number; text: string }> {
  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    const auth = await client.authPlain(`alice@${DOMAIN}`, PASSWORD);
    if (auth.code !== 235) return auth;
    const { final } = await client.send(`alice@${DOMAIN}`, ['bob@remote.example'], message(`alice@${DOMAIN}`, 'bob@remote.example', subject, body));
    return final;
  } catch (error) {
    // e.g. "STARTTLS refused: 454 4.3.0 Try again later" while a milter is down
    const text = (error as Error).message;
    return { code: Number(/\b([45]\d\d) /.exec(text)?.[1] ?? 0), text };
  } finally {
    await client.quit();
  }
}

const upstreamCopy = async (box: Instance, subject: string) => messageOf(await waitFor(`"${subject}" upstream`, 15_000, () => box.sink.messages().find((m) => m.includes(`Subject: ${subject}`))));

describe('DKIM signing with a generated key', () => {
  let dns: DnsServer;
  let box: Instance;
  before(async () => {
    dns = await DnsServer.start();
    box = await Instance.start({ DNS_SERVERS: dns.address, SPAM_FILTER: 'off' });
  });
  after(async () => {
    await box.destroy();
    await dns.stop();
  });

  test('a message submitted on 587 arrives signed, verifies against the record `relaybox dns` prints, and an altered copy fails', async () => {
    const printed = await runCli(['dns'], box.env);
    assert.equal(printed.code, 0, printed.stderr);
    const name = `relaybox._domainkey.${DOMAIN}`;
    const record = printedTxt(printed.stdout).get(name);
    assert.match(record ?? '', /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
    dns.set(name, { TXT: [record!] });

    assert.equal((await submit(box, 'dkim-verify')).code, 250);
    const received = await upstreamCopy(box, 'dkim-verify');
    assert.deepEqual(await verify(received, dns), [{ result: 'pass', domain: DOMAIN, selector: 'relaybox' }]);
    const altered = received.replace('Signed by relaybox.', 'Signed by somebody else.');
    assert.notEqual(altered, received);
    const [tampered] = await verify(altered, dns);
    assert.notEqual(tampered?.result, 'pass');
    assert.match(String(tampered?.comment), /body hash/);
    assert.ok(box.logs().some((l) => l.service === 'postfix' && /dkim signed d=relaybox\.test s=relaybox/.test(String(l.msg))));
    const metrics = await (await fetch(box.url('/metrics'))).text();
    assert.match(metrics, /^relaybox_dkim_signatures_total [1-9]/m);
  });

  test('`relaybox dns --check` passes once everything is published, and calls a wrong published key an error', async () => {
    const printed = await runCli(['dns'], box.env);
    for (const [name, value] of printedTxt(printed.stdout)) dns.set(name, { TXT: [value] });
    dns.set(DOMAIN, { MX: [[10, `mail.${DOMAIN}`]] });
    // No MTA-STS policy is served here (test/integration/dns-tls.test.ts checks that one).
    const good = await runCli(['dns', '--check'], { ...box.env, MTA_STS_POLICY_MODE: 'off' });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.equal(good.stdout.trim().split('\n').filter((line) => !line.startsWith('OK ')).length, 0, good.stdout);

    const other = mkdtempSync('/tmp/rbdkim-');
    const made = await runCli(['dkim-keygen', '--domain', DOMAIN, '--out', other], {});
    assert.equal(made.code, 0, made.stderr);
    const foreign = printedTxt(made.stdout).get(`relaybox._domainkey.${DOMAIN}`)!;
    dns.set(`relaybox._domainkey.${DOMAIN}`, { TXT: [foreign] });
    dns.remove(`_dmarc.${DOMAIN}`);
    const bad = await runCli(['dns', '--check'], { ...box.env, MTA_STS_POLICY_MODE: 'off' });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^ERROR\s+relaybox\._domainkey\.relaybox\.test TXT \(dkim\): the published key is not the key relaybox signs with/m);
    assert.match(bad.stdout, /^MISSING _dmarc\.relaybox\.test TXT \(dmarc\): no v=DMARC1 record; publish: TXT "v=DMARC1; p=none/m);
    assert.match(bad.stdout, /^OK\s+relaybox\.test MX \(mx\)/m);
  });

  test('with the signer down, submission gets 451 and nothing unsigned reaches the upstream; signed again once it is back', async () => {
    const conf = `${box.stateDir}/opendkim/opendkim.conf`;
    const good = readFileSync(conf, 'utf8');
    const sent = box.sink.messages().length;
    // OpenDKIM cannot start for a while: every restart fails.
    writeFileSync(conf, 'Mode nonsense\n');
    const pid = Number(readFileSync(`${box.stateDir}/opendkim/opendkim.pid`, 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor('the signer to be down', 10_000, async () => ((await box.get('/ready')).status === 503 ? true : undefined));
    const during = await submit(box, 'while-the-signer-is-down');
    assert.ok([451, 454].includes(during.code), `${during.code} ${during.text}`);
    const ready = await box.get('/ready');
    assert.equal((ready.body.checks as Record<string, { ok: boolean }>)['dkim-signer']?.ok, false);

    writeFileSync(conf, good);
    await waitFor('the signer to be back', 30_000, async () => ((await box.get('/ready')).status === 200 ? true : undefined), 200);
    assert.equal((await submit(box, 'after-the-signer-is-back')).code, 250);
    const after = await upstreamCopy(box, 'after-the-signer-is-back');
    assert.match(after, /^DKIM-Signature: .*d=relaybox\.test/m);
    const arrived = box.sink.messages().slice(sent);
    assert.ok(arrived.every((m) => /^DKIM-Signature:/m.test(m)), 'an unsigned message reached the upstream');
    assert.ok(!arrived.some((m) => m.includes('while-the-signer-is-down')));
  });
});

describe('DKIM signing with keys from DKIM_KEY_DIR', () => {
  test('supplied keys sign; a key file added for a new selector signs too, without a restart', async () => {
    const dns = await DnsServer.start();
    const keys = mkdtempSync('/tmp/rbdkimkeys-');
    const first = await runCli(['dkim-keygen', '--domain', DOMAIN, '--selector', 's1', '--out', keys], {});
    assert.equal(first.code, 0, first.stderr);
    for (const [name, value] of printedTxt(first.stdout)) dns.set(name, { TXT: [value] });
    const box = await Instance.start({ DNS_SERVERS: dns.address, SPAM_FILTER: 'off', DKIM_KEY_DIR: keys });
    try {
      assert.equal((await submit(box, 'one-selector')).code, 250);
      assert.deepEqual(await verify(await upstreamCopy(box, 'one-selector'), dns), [{ result: 'pass', domain: DOMAIN, selector: 's1' }]);

      const second = await runCli(['dkim-keygen', '--domain', DOMAIN, '--selector', 's2', '--out', keys], {});
      for (const [name, value] of printedTxt(second.stdout)) dns.set(name, { TXT: [value] });
      const pids = box.logs().filter((l) => l.event === 'reload').length;
      await waitFor('the reload', 20_000, () => (box.logs().filter((l) => l.event === 'reload').length > pids ? true : undefined), 200);
      await waitFor('both selectors to sign', 20_000, async () => {
        const subject = `two-selectors-${Date.now()}`;
        if ((await submit(box, subject)).code !== 250) return undefined;
        const results = await verify(await upstreamCopy(box, subject), dns);
        return results.length === 2 ? results : undefined;
      }, 500).then((results) => assert.deepEqual(results.map((r) => `${r.selector}:${r.result}`).sort(), ['s1:pass', 's2:pass']));
    } finally {
      await box.destroy();
      await dns.stop();
    }
  });

  test('a key file that is not a usable RSA key is refused at start, naming DKIM_KEY_DIR', async () => {
    const keys = mkdtempSync('/tmp/rbdkimkeys-');
    writeFileSync(`${keys}/${DOMAIN}.relaybox.key`, '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
    const result = await runCli(['check-config'], { MAIL_HOSTNAME: `mail.${DOMAIN}`, MAIL_DOMAINS: DOMAIN, DKIM_KEY_DIR: keys, STATE_DIR: mkdtempSync('/tmp/rbt-') });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /DKIM_KEY_DIR.*relaybox\.test\.relaybox\.key is not a PEM private key/);
  });
});

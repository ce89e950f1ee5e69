// DANE and MTA-STS on direct delivery, against real daemons on loopback: Knot DNS serves a zone
// signed with a test key, relaybox's unbound validates with that key as its anchor, MX hosts listen
// on port 25 of their own 127.0.0.x addresses, MTA-STS policies are served over HTTPS (port 443) with
// a test CA. TLSA matching: delivered over TLS (DANE wins over the domain's MTA-STS policy). TLSA not
// matching, or STARTTLS stripped while TLSA exists: deferred, never sent in clear, the reason logged
// and counted. A domain without DNSSEC: delivered opportunistically. MTA-STS enforce with an MX
// certificate for another name: deferred; testing: delivered and reported.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { DnssecLab, tlsaFor } from '../helpers/dnssec-lab.ts';
import { DnsServer } from '../helpers/dns-server.ts';
import { DOMAIN, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { counter, scrape } from '../helpers/metrics.ts';
import { receivedWith, startMx } from '../helpers/mx-host.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import type { Upstream } from '../helpers/upstream.ts';

const ALICE = `alice@${DOMAIN}`;
/** Its own resolver address, so that this file never meets another instance's resolver. */
const RESOLVER_ADDRESS = `127.0.0.${150 + (process.pid % 40)}`;

async function submit(box: Instance, to: string, subject: string): Promise<void> {
  const { client } = await SmtpClient.connect(box.ports.submission);
  await client.ehlo();
  await client.starttls();
  assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
  const { final } = await client.send(ALICE, [to], message(ALICE, to, subject));
  assert.equal(final.code, 250, final.text);
  await client.quit();
}

/** The `status=deferred` line Postfix logged for a recipient. */
const deferral = (box: Instance, to: string) => box.logs().find((l) => String(l.msg).includes(`to=<${to}>`) && String(l.msg).includes('status=deferred'));

const POLICIES: Record<string, string> = {
  'mta-sts.good.dane.test': 'version: STSv1\nmode: enforce\nmx: mx-good.dane.test\nmax_age: 86400\n',
  'mta-sts.enforce.plain.test': 'version: STSv1\nmode: enforce\nmx: mx-enforce.plain.test\nmax_age: 86400\n',
  'mta-sts.enforce-ok.plain.test': 'version: STSv1\nmode: enforce\nmx: *.plain.test\nmax_age: 86400\n',
  'mta-sts.testing.plain.test': 'version: STSv1\nmode: testing\nmx: mx-testing.plain.test\nmax_age: 86400\n',
};

/** The policy host for every domain above, on 127.0.0.205:443 with one certificate naming them all. */
async function startPolicyHost(ca: TestCa): Promise<Server> {
  const pair = ca.issue(...Object.keys(POLICIES));
  const server = createServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (req, res) => {
    const policy = POLICIES[(req.headers.host ?? '').replace(/:\d+$/, '')];
    if (req.url !== '/.well-known/mta-sts.txt' || !policy) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(policy);
  });
  await new Promise<void>((resolve) => server.listen(443, '127.0.0.205', resolve));
  return server;
}

describe('DANE on direct delivery (signed zone on loopback, unbound validating)', () => {
  let ca: TestCa;
  let lab: DnssecLab;
  let box: Instance;
  const mx: Record<string, Upstream> = {};
  let policyHost: Server;
  before(async () => {
    ca = new TestCa();
    const good = ca.selfSigned('mx-good.dane.test');
    const bad = ca.selfSigned('mx-bad.dane.test');
    const strip = ca.selfSigned('mx-strip.dane.test');
    const plain = ca.selfSigned('mx.plain.test');
    const unrelated = ca.selfSigned('unrelated.test');
    const bogus = ca.selfSigned('mx-bogus.dane.test');
    // ldns-signzone writes TLSA data as one hex string: the forged copy names the unrelated key.
    const [forged, genuine] = [tlsaFor(unrelated.cert), tlsaFor(bogus.cert)].map((record) => record.split(' ')[3]!);
    lab = await DnssecLab.start([
      {
        origin: 'dane.test',
        signed: true,
        records: [
          'good MX 10 mx-good',
          'mx-good A 127.0.0.201',
          `_25._tcp.mx-good TLSA ${tlsaFor(good.cert)}`,
          'bad MX 10 mx-bad',
          'mx-bad A 127.0.0.202',
          `_25._tcp.mx-bad TLSA ${tlsaFor(unrelated.cert)}`,
          'strip MX 10 mx-strip',
          'mx-strip A 127.0.0.203',
          `_25._tcp.mx-strip TLSA ${tlsaFor(strip.cert)}`,
          // Signed for the MX's own key, then altered on the wire: the resolver finds it bogus.
          'bogus MX 10 mx-bogus',
          'mx-bogus A 127.0.0.210',
          `_25._tcp.mx-bogus TLSA ${tlsaFor(bogus.cert)}`,
          // DANE and an MTA-STS policy its self-signed certificate would fail: DANE applies.
          '_mta-sts.good TXT "v=STSv1; id=20261202"',
          'mta-sts.good A 127.0.0.205',
        ],
        forge: [[genuine!, forged!]],
      },
      {
        origin: 'plain.test',
        signed: false,
        records: [
          '@ MX 10 mx',
          'mx A 127.0.0.204',
          'policy MX 10 mx.policy',
          'mx.policy A 127.0.0.211',
          ...['enforce', 'enforce-ok', 'testing'].flatMap((name, i) => [`${name} MX 10 mx-${name}`, `mx-${name} A 127.0.0.${206 + i}`, `_mta-sts.${name} TXT "v=STSv1; id=1"`, `mta-sts.${name} A 127.0.0.205`]),
        ],
      },
    ]);
    policyHost = await startPolicyHost(ca);
    mx.enforce = await startMx({ address: '127.0.0.206', name: 'mx-enforce.plain.test', certificate: ca.issue('other.test') });
    mx.enforceOk = await startMx({ address: '127.0.0.207', name: 'mx-enforce-ok.plain.test', certificate: ca.issue('mx-enforce-ok.plain.test') });
    mx.testing = await startMx({ address: '127.0.0.208', name: 'mx-testing.plain.test', certificate: ca.issue('other.test') });
    mx.good = await startMx({ address: '127.0.0.201', name: 'mx-good.dane.test', certificate: good });
    mx.bad = await startMx({ address: '127.0.0.202', name: 'mx-bad.dane.test', certificate: bad });
    mx.strip = await startMx({ address: '127.0.0.203', name: 'mx-strip.dane.test', certificate: strip, noStartTls: true });
    mx.policy = await startMx({ address: '127.0.0.211', name: 'mx.policy.plain.test', certificate: ca.issue('mx.policy.plain.test') });
    mx.bogus = await startMx({ address: '127.0.0.210', name: 'mx-bogus.dane.test', certificate: bogus, noStartTls: true });
    mx.plain = await startMx({ address: '127.0.0.204', name: 'mx.plain.test', certificate: plain });
    box = await Instance.start({
      RELAY_HOST: '',
      SPAM_FILTER: 'off',
      MTA_STS: 'on',
      OUTBOUND_TLS_CA_FILE: ca.cert,
      TLS_POLICY: 'policy.plain.test=verify',
      DNS_SERVERS: lab.address,
      DNSSEC_TRUST_ANCHOR_FILE: lab.trustAnchor,
      RESOLVER_ADDRESS,
    });
  });
  after(async () => {
    await box?.destroy();
    for (const server of Object.values(mx)) await server.stop();
    await new Promise((resolve) => policyHost?.close(resolve));
    await lab?.stop();
    ca?.remove();
  });

  test('the resolver is a supervised daemon, Postfix asks it and requires DNSSEC for DANE', async () => {
    const ready = await box.get('/ready');
    assert.equal(ready.status, 200);
    assert.match(ready.text, /"unbound"/);
    const mainCf = readFileSync(`${box.stateDir}/postfix/main.cf`, 'utf8');
    assert.match(mainCf, /^smtp_tls_security_level = dane$/m);
    assert.match(mainCf, /^smtp_dns_support_level = dnssec$/m);
    assert.equal(readFileSync(`${box.stateDir}/queue/etc/resolv.conf`, 'utf8').match(/^nameserver (.*)$/m)?.[1], RESOLVER_ADDRESS);

  });

  test('(a) TLSA matches the MX certificate: delivered over TLS, logged as DANE-verified, DANE ahead of MTA-STS', async () => {
    await submit(box, 'user@good.dane.test', 'dane-good');
    const received = await waitFor('the MX to receive the message', 30_000, () => receivedWith(mx.good!, 'dane-good'), 100);
    assert.equal(received.tls, true);
    assert.ok(box.logs().some((l) => l.event === 'mta_sts_dane_precedence' && l.domain === 'good.dane.test'), 'the MTA-STS policy was found and set aside for DANE');
    assert.ok(box.logs().some((l) => /Verified TLS connection established to mx-good\.dane\.test\[127\.0\.0\.201\]:25/.test(String(l.msg))), 'Postfix logs a verified (DANE) connection');
  });

  test('(b) TLSA does not match: deferred, never delivered, the reason logged and counted', async () => {
    await submit(box, 'user@bad.dane.test', 'dane-bad');
    const line = await waitFor('the deferral', 30_000, () => deferral(box, 'user@bad.dane.test'), 100);
    assert.match(String(line.msg), /Server certificate not verified/);
    assert.equal(receivedWith(mx.bad!, 'dane-bad'), undefined);
    assert.ok(mx.bad!.commands.every((c) => !/^MAIL FROM/i.test(c.line)), 'no MAIL FROM reached the MX, with or without TLS');
    const metrics = await waitFor('the deferral counted', 10_000, async () => {
      const text = await scrape(box.url('/metrics'));
      return counter(text, 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'tls_not_verified' }) >= 1 ? text : undefined;
    });
    assert.ok(metrics);
  });

  test('(c) the MX strips STARTTLS while TLSA exists: deferred, nothing sent in clear', async () => {
    await submit(box, 'user@strip.dane.test', 'dane-strip');
    const line = await waitFor('the deferral', 30_000, () => deferral(box, 'user@strip.dane.test'), 100);
    assert.match(String(line.msg), /TLS is required, but was not offered/);
    assert.ok(mx.strip!.commands.length > 0, 'Postfix did connect to the MX');
    assert.ok(mx.strip!.commands.every((c) => !/^(MAIL FROM|RCPT|DATA)/i.test(c.line)), 'no envelope went to the MX in clear');
    await waitFor('the deferral counted', 10_000, async () => counter(await scrape(box.url('/metrics')), 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'tls_not_offered' }) >= 1 || undefined);
  });

  test('(c) a forged TLSA answer (its signature fails): deferred, the MX never reached in clear', async () => {
    await submit(box, 'user@bogus.dane.test', 'dane-bogus');
    const line = await waitFor('the deferral', 30_000, () => deferral(box, 'user@bogus.dane.test'), 100);
    assert.match(String(line.msg), /TLSA/);
    assert.ok(mx.bogus!.commands.every((c) => !/^(MAIL FROM|RCPT|DATA)/i.test(c.line)), 'nothing went to the MX in clear');
    assert.ok(box.logs().some((l) => l.service === 'unbound' && /validation failure <_25\._tcp\.mx-bogus\.dane\.test\. TLSA IN>/.test(String(l.msg))), 'unbound logs why');
    await waitFor('the deferral counted', 10_000, async () => counter(await scrape(box.url('/metrics')), 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'dane_lookup_failed' }) >= 1 || undefined);
  });

  test('(d) a domain without DNSSEC: delivered with opportunistic TLS (an unverified certificate is fine)', async () => {
    await submit(box, 'user@plain.test', 'plain-opportunistic');
    const received = await waitFor('the MX to receive the message', 30_000, () => receivedWith(mx.plain!, 'plain-opportunistic'), 100);
    assert.equal(received.tls, true);
    assert.ok(box.logs().some((l) => /Untrusted TLS connection established to mx\.plain\.test\[127\.0\.0\.204\]:25/.test(String(l.msg))));
  });

  test('(e) MTA-STS enforce, the MX certificate names another host: deferred, counted; a matching one delivered', async () => {
    await submit(box, 'user@enforce.plain.test', 'sts-enforce');
    const line = await waitFor('the deferral', 30_000, () => deferral(box, 'user@enforce.plain.test'), 100);
    assert.match(String(line.msg), /Server certificate not verified/);
    assert.equal(receivedWith(mx.enforce!, 'sts-enforce'), undefined);
    assert.ok(mx.enforce!.commands.every((c) => !/^MAIL FROM/i.test(c.line)));
    assert.ok(box.logs().some((l) => l.event === 'mta_sts_policy' && l.domain === 'enforce.plain.test' && l.mode === 'enforce'));
    await waitFor('the deferral counted', 10_000, async () => counter(await scrape(box.url('/metrics')), 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'tls_not_verified' }) >= 2 || undefined);
    await submit(box, 'user@enforce-ok.plain.test', 'sts-enforce-ok');
    const received = await waitFor('the MX to receive the message', 30_000, () => receivedWith(mx.enforceOk!, 'sts-enforce-ok'), 100);
    assert.equal(received.tls, true);
    assert.ok(box.logs().some((l) => /Verified TLS connection established to mx-enforce-ok\.plain\.test\[127\.0\.0\.207\]:25/.test(String(l.msg))));
  });

  test('(e) MTA-STS testing, the same wrong certificate: delivered, and the policy reported as not enforced', async () => {
    await submit(box, 'user@testing.plain.test', 'sts-testing');
    const received = await waitFor('the MX to receive the message', 30_000, () => receivedWith(mx.testing!, 'sts-testing'), 100);
    assert.equal(received.tls, true);
    const report = box.logs().find((l) => l.event === 'mta_sts_testing' && l.domain === 'testing.plain.test');
    assert.ok(report, 'the testing policy is reported');
    assert.equal(report.level, 40);
  });

  test('TLS_POLICY verify for a domain without DNSSEC or MTA-STS: its MX certificate is verified (chain and name)', async () => {
    await submit(box, 'user@policy.plain.test', 'tls-policy-verify');
    const received = await waitFor('the MX to receive the message', 30_000, () => receivedWith(mx.policy!, 'tls-policy-verify'), 100);
    assert.equal(received.tls, true);
    assert.ok(box.logs().some((l) => /Verified TLS connection established to mx\.policy\.plain\.test\[127\.0\.0\.211\]:25/.test(String(l.msg))), 'verified, not merely opportunistic');
  });

  test('the resolver killed with -9 is restarted like any daemon, and DANE delivery goes on', async () => {
    const pid = Number(readFileSync(`${box.stateDir}/unbound/unbound.pid`, 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor('unbound restarted', 20_000, async () => {
      const ready = await box.get('/ready');
      const unbound = (ready.body.daemons as Record<string, { state: string; restarts: number; pid?: number }>).unbound;
      return (unbound?.state === 'running' && unbound.restarts >= 1 && unbound.pid !== pid && ready.status === 200) || undefined;
    }, 200);
    await submit(box, 'again@good.dane.test', 'dane-after-restart');
    const received = await waitFor('the MX to receive the message', 30_000, () => receivedWith(mx.good!, 'dane-after-restart'), 100);
    assert.equal(received.tls, true);
    assert.ok(!box.logs().some((l) => l.event === 'resolver_not_validating'), "the anchor's zone validated at start: no warning");
  });
});

describe('a forwarder that strips DNSSEC, with the root as the anchor', () => {
  let dns: DnsServer;
  let box: Instance;
  before(async () => {
    dns = await DnsServer.start();
    dns.set('stripped.example', { MX: [[10, 'mx.stripped.example']] });
    dns.set('mx.stripped.example', { A: ['127.0.0.213'] });
    box = await Instance.start({ RELAY_HOST: '', SPAM_FILTER: 'off', MTA_STS: 'off', DNS_SERVERS: dns.address, RESOLVER_ADDRESS: `127.0.0.${191 + (process.pid % 8)}` });
  });
  after(async () => {
    await box?.destroy();
    await dns?.stop();
  });

  test('is said once at start, and mail waits (deferred as dns) instead of going out unprotected', async () => {
    const warning = await waitFor('the warning', 20_000, () => box.logs().find((l) => l.event === 'resolver_not_validating'), 100);
    assert.equal(warning.zone, '.');
    assert.match(String(warning.msg), /RESOLVER=system/);
    await submit(box, 'user@stripped.example', 'stripped');
    const line = await waitFor('the deferral', 30_000, () => deferral(box, 'user@stripped.example'), 100);
    assert.match(String(line.msg), /Host or domain name not found|Name service error/);
    await waitFor('the deferral counted', 10_000, async () => counter(await scrape(box.url('/metrics')), 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'dns' }) >= 1 || undefined);
  });
});

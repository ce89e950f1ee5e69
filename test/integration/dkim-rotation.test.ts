// A DKIM rotation through `relaybox dkim`, against the real OpenDKIM and a loopback DNS server: the
// new selector never signs while its record is missing or wrong; once DNS publishes it, signing
// switches and the old record stays listed for the grace period; then it is retired. Keys given in
// DKIM_KEY_DIR are reported and never rotated.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DOMAIN, Instance, PASSWORD, runCli, waitFor } from '../helpers/instance.ts';
import { DnsServer } from '../helpers/dns-server.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

async function verify(raw: string, dns: DnsServer) {
  const resolver = new Resolver();
  resolver.setServers([dns.address]);
  const resolve = async (name: string, type: string) => (type === 'TXT' ? resolver.resolveTxt(name) : resolver.resolve(name, type as 'A'));
  const { results } = await dkimVerify(Buffer.from(raw.replace(/\r?\n/g, '\r\n')), { resolver: resolve as never });
  return results.map((r) => ({ result: r.status.result, selector: r.selector }));
}

async function signedWith(box: Instance, dns: DnsServer, subject: string) {
  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(`alice@${DOMAIN}`, PASSWORD)).code, 235);
    assert.equal((await client.send(`alice@${DOMAIN}`, ['bob@remote.example'], message(`alice@${DOMAIN}`, 'bob@remote.example', subject))).final.code, 250);
  } finally {
    await client.quit();
  }
  const stored = await waitFor(`"${subject}" upstream`, 15_000, () => box.sink.messages().find((m) => m.includes(`Subject: ${subject}`)));
  return verify(stored.slice(stored.search(/^(Received|DKIM-Signature|From):/m)), dns);
}

async function dkim(box: Instance, args: string[]) {
  const result = await runCli(['dkim', ...args, '--json'], box.env);
  return { ...result, json: JSON.parse(result.stdout || 'null') as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('DKIM rotation', () => {
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

  test('the new selector signs only once its record is published; the old one is listed for the grace period, then retired', async () => {
    const [before] = (await dkim(box, ['list'])).json;
    assert.equal(before.domain, DOMAIN);
    assert.deepEqual(before.selectors.map((s: { selector: string; role: string }) => [s.selector, s.role]), [['relaybox', 'signing']]);
    assert.equal(before.selectors[0].check.status, 'missing');
    dns.set(`relaybox._domainkey.${DOMAIN}`, { TXT: [before.selectors[0].record.value] });
    assert.equal((await dkim(box, ['list'])).json[0].selectors[0].check.status, 'ok');

    const started = await dkim(box, ['rotate', DOMAIN, '--selector', 's2']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.json.record.name, `s2._domainkey.${DOMAIN}`);
    const people = await runCli(['dkim', 'list'], box.env);
    assert.match(people.stdout, /^s2\s+pending\s+missing: no v=DKIM1 record/m);

    // Not published: verify changes nothing, and mail is still signed with the old selector only.
    const early = await dkim(box, ['verify', DOMAIN]);
    assert.equal(early.code, 1, 'not published: exit 1');
    assert.equal(early.json.switched, false);
    assert.deepEqual(await signedWith(box, dns, 'rotation-1'), [{ result: 'pass', selector: 'relaybox' }]);

    // A wrong key published under the new name: still no switch.
    dns.set(`s2._domainkey.${DOMAIN}`, { TXT: [before.selectors[0].record.value] });
    const wrong = await dkim(box, ['verify', DOMAIN]);
    assert.equal(wrong.json.switched, false);
    assert.equal(wrong.json.check.status, 'error');
    assert.deepEqual(await signedWith(box, dns, 'rotation-2'), [{ result: 'pass', selector: 'relaybox' }]);

    // Published while `verify --wait` looks: the switch.
    const waiting = dkim(box, ['verify', DOMAIN, '--wait', '20s', '--grace', '2s']);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    dns.set(`s2._domainkey.${DOMAIN}`, { TXT: [started.json.record.value] });
    const switched = await waiting;
    assert.equal(switched.code, 0, switched.stderr);
    assert.equal(switched.json.switched, true);
    assert.deepEqual(await signedWith(box, dns, 'rotation-3'), [{ result: 'pass', selector: 's2' }]);
    const during = (await dkim(box, ['list'])).json[0];
    assert.deepEqual(during.selectors.map((s: { selector: string; role: string }) => [s.selector, s.role]), [['s2', 'signing'], ['relaybox', 'retiring']]);
    const zone = await runCli(['dns'], box.env);
    assert.match(zone.stdout, /^relaybox\._domainkey\.relaybox\.test\./m, 'the old record stays listed');
    assert.match(zone.stdout, /^s2\._domainkey\.relaybox\.test\./m);

    await new Promise((resolve) => setTimeout(resolve, 2000));
    const retired = await dkim(box, ['retire', DOMAIN]);
    assert.equal(retired.code, 0, retired.stderr);
    assert.deepEqual(retired.json.retired, ['relaybox']);
    assert.equal(existsSync(`${box.stateDir}/dkim/${DOMAIN}.relaybox.key`), false);
    assert.doesNotMatch((await runCli(['dns'], box.env)).stdout, /^relaybox\._domainkey/m);
    const actions = box.logs().filter((l) => l.event === 'admin_action').map((l) => l.action);
    assert.deepEqual(actions, ['dkim_rotate_start', 'dkim_rotate_switch', 'dkim_rotate_retire']);

    // A restart keeps signing with the rotated selector.
    await box.stop();
    box.launch();
    await box.waitReady();
    assert.deepEqual(await signedWith(box, dns, 'rotation-4'), [{ result: 'pass', selector: 's2' }]);
  });

  test('bad rotation requests are refused and change nothing', async () => {
    const audited = () => box.logs().filter((l) => l.event === 'admin_action').length;
    const before = audited();
    const cases: Array<[string[], number, RegExp]> = [
      [['rotate', 'other.example'], 1, /other\.example is not signed for/],
      [['rotate', DOMAIN, '--selector', 'not a selector'], 2, /selector: "not a selector" is not a selector/],
      [['rotate', DOMAIN, '--selector', 's2'], 2, /s2 is \(or was\) in use/],
      [['verify', DOMAIN], 1, /no rotation of relaybox\.test under way/],
      [['retire', DOMAIN], 1, /no selector in a grace period/],
      [['verify', DOMAIN, '--wait', 'a while'], 1, /no rotation/],
      [['rotate'], 2, /give exactly one domain/],
    ];
    for (const [args, code, error] of cases) {
      const result = await runCli(['dkim', ...args], box.env);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, error, args.join(' '));
    }
    assert.equal(audited(), before, 'nothing changed');
    assert.deepEqual((await dkim(box, ['list'])).json[0].selectors.map((s: { selector: string }) => s.selector), ['s2']);
  });
});

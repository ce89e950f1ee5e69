// Verified TLS to the smarthost and to relay routes, against real TLS upstreams on loopback that
// require AUTH: a certificate from a trusted CA with the right name gets the mail (and the password,
// over TLS only); a self-signed certificate or one for another name leaves the mail queued, the
// reason logged and counted, and the upstream never sees AUTH. RELAY_TLS=encrypt is a warned opt-out.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, lstatSync } from 'node:fs';
import { DOMAIN, hashOf, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { counter, gauge, scrape } from '../helpers/metrics.ts';
import { submit as submitAs } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream } from '../helpers/upstream.ts';

const ALICE = `alice@${DOMAIN}`;
const CAROL = 'carol@second.example';
const DAVE = 'dave@third.example';
const OUTSIDE = 'someone@outside.example';
const RELAY = { username: 'relay-user@provider.test', password: 'relay pass #1 $x:y' };
const ROUTE = { username: 'route-user', password: 'route-secret-2' };
const THIRD = { username: 'third-user', password: 'third-secret-3' };

async function submit(box: Instance, from: string, subject: string): Promise<void> {
  const final = await submitAs(box.ports, from, [OUTSIDE], subject);
  assert.equal(final.code, 250, final.text);
}

const logged = (box: Instance, pattern: RegExp) => box.logs().find((l) => pattern.test(String(l.msg)));

describe('verified upstream TLS with a private CA, and relay routes', () => {
  let ca: TestCa;
  let smarthost: Upstream;
  let second: Upstream;
  let wrongName: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    // It offers AUTH before STARTTLS too: only the relay's TLS policy keeps the password off the wire in clear.
    smarthost = await Upstream.start({ certificate: ca.issue('smarthost.test'), requireAuth: true, credentials: RELAY, name: 'smarthost.test', authInClear: true });
    second = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: ROUTE, name: 'second.test' });
    wrongName = await Upstream.start({ certificate: ca.issue('other.test'), requireAuth: true, name: 'third.test' });
    box = await Instance.start({
      MAIL_USERS: [ALICE, CAROL, DAVE].map((user) => `${user}:${hashOf(PASSWORD)}`).join('\n'),
      RELAY_HOST: `[127.0.0.1]:${smarthost.port}`,
      RELAY_TLS_NAME: 'smarthost.test',
      RELAY_TLS_CA_FILE: ca.cert,
      RELAY_USERNAME: RELAY.username,
      RELAY_PASSWORD: RELAY.password,
      RELAY_ROUTES: `@second.example=[127.0.0.1]:${second.port} @third.example=[127.0.0.1]:${wrongName.port}`,
      RELAY_ROUTE_CREDENTIALS: `@second.example ${ROUTE.username}:${ROUTE.password}\n@third.example ${THIRD.username}:${THIRD.password}`,
    });
  });
  after(async () => {
    await box.destroy();
    for (const upstream of [smarthost, second, wrongName]) await upstream.stop();
    ca.remove();
  });

  test('a certificate from RELAY_TLS_CA_FILE naming RELAY_TLS_NAME: delivered, AUTH only after TLS', async () => {
    await submit(box, ALICE, 'verified-smarthost');
    await waitFor('the smarthost to receive the message', 30_000, () => smarthost.messages.find((m) => m.data.includes('Subject: verified-smarthost')), 100);
    assert.deepEqual(smarthost.passwords, [{ user: RELAY.username, password: RELAY.password, tls: true }]);
    const auths = smarthost.commands.filter((c) => /^AUTH/.test(c.line));
    assert.ok(auths.length >= 1 && auths.every((c) => c.tls), `AUTH offered in clear, taken only after STARTTLS: ${JSON.stringify(smarthost.commands)}`);
    const first = smarthost.commands.filter((c) => c.connection === auths[0]!.connection).map((c) => c.line.split(' ')[0]);
    assert.ok(first.indexOf('STARTTLS') >= 0 && first.indexOf('STARTTLS') < first.indexOf('AUTH'), first.join(' '));
    assert.equal(smarthost.messages.at(-1)?.user, RELAY.username);
    assert.ok(logged(box, /Verified TLS connection established to 127\.0\.0\.1/), 'Postfix logs a verified connection');
  });

  test('a route: mail from its sender domain goes to its own smarthost with its own credentials', async () => {
    await submit(box, CAROL, 'routed-second');
    const received = await waitFor('the route to receive the message', 30_000, () => second.messages.find((m) => m.data.includes('Subject: routed-second')), 100);
    assert.equal(received.user, ROUTE.username);
    assert.equal(received.from, CAROL);
    assert.ok(!smarthost.messages.some((m) => m.data.includes('Subject: routed-second')), 'not through RELAY_HOST');
    assert.ok(second.passwords.length >= 1 && second.passwords.every((p) => p.tls && p.password === ROUTE.password), JSON.stringify(second.passwords.map((p) => p.tls)));
  });

  test('a certificate for another name: the mail stays queued, the reason is logged and counted, no AUTH', async () => {
    await submit(box, DAVE, 'wrong-name');
    const deferred = await waitFor('the deferral', 30_000, () => box.logs().find((l) => /to=<someone@outside\.example>.*status=deferred \(Server certificate not verified\)/.test(String(l.msg))), 100);
    assert.match(String(deferred.msg), new RegExp(`relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${wrongName.port}\\b`), 'deferred at the route of @third.example');
    assert.ok(logged(box, /certificate verification failed for 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: num=6[24]:(hostname|IP address) mismatch/), `the detail is logged: ${box.logs().filter((l) => /verification/.test(String(l.msg))).map((l) => l.msg).join(' | ')}`);
    const metrics = await waitFor('the deferral counted', 10_000, async () => {
      const text = await scrape(box.url('/metrics'));
      return counter(text, 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'tls_not_verified' }) >= 1 ? text : undefined;
    }, 200);
    assert.ok(gauge(metrics, 'relaybox_queue_messages', { queue: 'deferred' }) >= 1, 'the message stays queued');
    assert.ok(wrongName.commands.some((c) => c.line === 'STARTTLS'), 'the relay did reach the upstream');
    assert.equal(wrongName.sawAuth, false, `the upstream saw: ${wrongName.commands.map((c) => c.line).join(' / ')}`);
    assert.deepEqual(wrongName.passwords, []);
    assert.equal(wrongName.messages.length, 0);
  });
});

describe('verified upstream TLS against the system CA store', () => {
  let ca: TestCa;
  let untrusted: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    untrusted = await Upstream.start({ certificate: ca.selfSigned('smarthost.test'), requireAuth: true, name: 'smarthost.test' });
    box = await Instance.start({ RELAY_HOST: `[127.0.0.1]:${untrusted.port}`, RELAY_TLS_NAME: 'smarthost.test', RELAY_USERNAME: RELAY.username, RELAY_PASSWORD: RELAY.password });
  });
  after(async () => {
    await box.destroy();
    await untrusted.stop();
    ca.remove();
  });

  test('the CA links are copied into the chroot as files', () => {
    const dir = `${box.stateDir}/queue/etc/ssl/certs`;
    const links = readdirSync(dir).filter((name) => /^[0-9a-f]{8}\.\d+$/.test(name));
    assert.ok(links.length > 50, `${links.length} CA links in ${dir}`);
    assert.ok(links.every((name) => lstatSync(`${dir}/${name}`).isFile()), 'dereferenced: a symlink would dangle inside the chroot');
  });

  test('a self-signed certificate with the right name: queued, never given the password', async () => {
    await submit(box, ALICE, 'self-signed');
    await waitFor('the deferral', 30_000, () => logged(box, /status=deferred \(Server certificate not verified\)/), 100);
    assert.ok(logged(box, /certificate verification failed for 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: self-signed certificate/));
    await waitFor('the deferral counted', 10_000, async () => counter(await scrape(box.url('/metrics')), 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'tls_not_verified' }) >= 1 || undefined, 200);
    assert.ok(untrusted.commands.some((c) => c.line === 'STARTTLS'));
    assert.equal(untrusted.sawAuth, false, `the upstream saw: ${untrusted.commands.map((c) => c.line).join(' / ')}`);
    assert.deepEqual(untrusted.passwords, []);
  });
});

describe('RELAY_TLS=encrypt', () => {
  test('is warned about at start, and then sends the password to an unverified smarthost', async () => {
    const ca = new TestCa();
    const untrusted = await Upstream.start({ certificate: ca.selfSigned('smarthost.test'), requireAuth: true });
    const box = await Instance.start({ RELAY_HOST: `[127.0.0.1]:${untrusted.port}`, RELAY_TLS: 'encrypt', RELAY_USERNAME: RELAY.username, RELAY_PASSWORD: RELAY.password });
    try {
      assert.ok(box.logs().some((l) => l.event === 'config_warning' && /RELAY_TLS=encrypt/.test(String(l.msg))));
      await submit(box, ALICE, 'encrypt-opt-out');
      await waitFor('the upstream to receive the message', 30_000, () => untrusted.messages.find((m) => m.data.includes('Subject: encrypt-opt-out')), 100);
      assert.ok(logged(box, /Untrusted TLS connection established/));
      assert.ok(untrusted.passwords.length >= 1 && untrusted.passwords.every((p) => p.tls), JSON.stringify(untrusted.passwords.map((p) => p.tls)));
    } finally {
      await box.destroy();
      await untrusted.stop();
      ca.remove();
    }
  });
});

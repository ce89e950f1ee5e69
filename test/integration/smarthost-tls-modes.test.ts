// Implicit TLS (port 465, or an `smtps:` prefix) and SNI to the smarthost and relay routes, against
// real TLS upstreams on loopback that require AUTH. An implicit-TLS upstream speaks TLS from the
// first byte (a client waiting for a plaintext greeting would hang); an SNI-picking upstream shows a
// certificate for the wrong name to a client that sends no SNI, as shared cloud front ends do.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, hashOf, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream } from '../helpers/upstream.ts';

const ALICE = `alice@${DOMAIN}`;
const CAROL = 'carol@second.example';
const DAVE = 'dave@third.example';
const ERIN = 'erin@fourth.example';
const OUTSIDE = 'someone@outside.example';
const RELAY = { username: 'relay-user@provider.test', password: 'relay pass #1' };
const ROUTE = { username: 'route-user', password: 'route-secret-2' };
const THIRD = { username: 'third-user', password: 'third-secret-3' };
const FOURTH = { username: 'fourth-user', password: 'fourth-secret-4' };
const USERS = [ALICE, CAROL, DAVE, ERIN].map((user) => `${user}:${hashOf(PASSWORD)}`).join('\n');

async function submit(box: Instance, from: string, subject: string): Promise<void> {
  const { client } = await SmtpClient.connect(box.ports.submission);
  await client.ehlo();
  await client.starttls();
  assert.equal((await client.authPlain(from, PASSWORD)).code, 235);
  const { final } = await client.send(from, [OUTSIDE], message(from, OUTSIDE, subject));
  assert.equal(final.code, 250, final.text);
  await client.quit();
}

const received = (upstream: Upstream, subject: string) => waitFor(`${subject} at the upstream`, 30_000, () => upstream.messages.find((m) => m.data.includes(`Subject: ${subject}`)), 100);
async function metric(box: Instance, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(box.url('/metrics'))).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const logged = (box: Instance, pattern: RegExp) => box.logs().find((l) => pattern.test(String(l.msg)));
const seen = (upstream: Upstream) => upstream.commands.map((c) => `${c.tls ? 'tls' : 'plain'}:${c.line}`).join(' / ');

/** Nothing before TLS: the first command already arrived encrypted, and no STARTTLS was needed. */
function tlsFromFirstByte(upstream: Upstream): void {
  assert.ok(upstream.commands.length > 0);
  assert.ok(upstream.commands.every((c) => c.tls), seen(upstream));
  assert.ok(!upstream.commands.some((c) => /^STARTTLS/i.test(c.line)), seen(upstream));
}

describe('RELAY_HOST on port 465: implicit TLS, verified, with SNI; routes in either mode', () => {
  let ca: TestCa;
  let smarthost: Upstream;
  let prefixed: Upstream;
  let starttls: Upstream;
  let wrongName: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    // Its default certificate names another host: only a client sending SNI smarthost.test gets the right one.
    smarthost = await Upstream.start({
      certificate: ca.issue('default.front-end.test'),
      byServername: { 'smarthost.test': ca.issue('smarthost.test') },
      implicitTls: true,
      listen: { host: '127.0.0.46', port: 465 },
      requireAuth: true,
      credentials: RELAY,
      name: 'smarthost.test',
    });
    prefixed = await Upstream.start({ certificate: ca.issue('127.0.0.1'), implicitTls: true, requireAuth: true, credentials: ROUTE, name: 'prefixed.test' });
    starttls = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: THIRD, name: 'starttls.test' });
    wrongName = await Upstream.start({ certificate: ca.issue('other.test'), implicitTls: true, requireAuth: true, name: 'wrong.test' });
    box = await Instance.start({
      MAIL_USERS: USERS,
      RELAY_HOST: '[127.0.0.46]:465',
      RELAY_TLS_NAME: 'smarthost.test',
      RELAY_TLS_CA_FILE: ca.cert,
      RELAY_USERNAME: RELAY.username,
      RELAY_PASSWORD: RELAY.password,
      RELAY_ROUTES: `@second.example=smtps:[127.0.0.1]:${prefixed.port} @third.example=[127.0.0.1]:${starttls.port} @fourth.example=smtps:[127.0.0.1]:${wrongName.port}`,
      RELAY_ROUTE_CREDENTIALS: [`@second.example ${ROUTE.username}:${ROUTE.password}`, `@third.example ${THIRD.username}:${THIRD.password}`, `@fourth.example ${FOURTH.username}:${FOURTH.password}`].join('\n'),
    });
  });
  after(async () => {
    await box?.destroy();
    for (const upstream of [smarthost, prefixed, starttls, wrongName]) await upstream?.stop();
    ca?.remove();
  });

  test('[host]:465 is delivered over TLS from the first byte, the certificate verified, the verified name sent as SNI', async () => {
    await submit(box, ALICE, 'implicit-465');
    const mail = await received(smarthost, 'implicit-465');
    assert.equal(mail.user, RELAY.username);
    tlsFromFirstByte(smarthost);
    assert.ok(smarthost.servernames.length > 0 && smarthost.servernames.every((name) => name === 'smarthost.test'), `SNI sent: ${JSON.stringify(smarthost.servernames)}`);
    assert.ok(logged(box, /Verified TLS connection established to 127\.0\.0\.46\[127\.0\.0\.46\]:465/), 'Postfix verified the certificate');
    assert.deepEqual(smarthost.passwords, [{ user: RELAY.username, password: RELAY.password, tls: true }]);
  });

  test('a route with smtps: on another port: implicit TLS, its own credentials', async () => {
    await submit(box, CAROL, 'implicit-prefixed-route');
    const mail = await received(prefixed, 'implicit-prefixed-route');
    assert.equal(mail.user, ROUTE.username);
    tlsFromFirstByte(prefixed);
    assert.ok(!smarthost.messages.some((m) => m.data.includes('Subject: implicit-prefixed-route')));
  });

  test('a STARTTLS route while RELAY_HOST is implicit TLS: plaintext greeting, then STARTTLS', async () => {
    await submit(box, DAVE, 'starttls-route');
    const mail = await received(starttls, 'starttls-route');
    assert.equal(mail.user, THIRD.username);
    assert.ok(starttls.commands.some((c) => !c.tls && c.line === 'STARTTLS'), seen(starttls));
    assert.ok(starttls.commands.filter((c) => /^AUTH/.test(c.line)).every((c) => c.tls));
  });

  test('an implicit-TLS route whose certificate names another host: deferred with the reason, never given the password', async () => {
    await submit(box, ERIN, 'wrong-name-465');
    await waitFor('the deferral', 30_000, () => logged(box, /to=<someone@outside\.example>.*status=deferred \(Server certificate not verified\)/), 100);
    assert.ok(logged(box, new RegExp(`certificate verification failed for 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${wrongName.port}`)));
    assert.ok((await metric(box, 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'tls_not_verified' })) >= 1, 'counted like a STARTTLS deferral');
    assert.equal(wrongName.sawAuth, false, seen(wrongName));
    assert.deepEqual(wrongName.passwords, []);
    assert.equal(wrongName.messages.length, 0);
  });
});

describe('RELAY_HOST with STARTTLS behind an SNI front end; a route on port 465', () => {
  let ca: TestCa;
  let front: Upstream;
  let route465: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    front = await Upstream.start({ certificate: ca.issue('default.front-end.test'), byServername: { 'smarthost.test': ca.issue('smarthost.test') }, requireAuth: true, credentials: RELAY, name: 'front.test' });
    route465 = await Upstream.start({ certificate: ca.issue('127.0.0.47'), implicitTls: true, listen: { host: '127.0.0.47', port: 465 }, requireAuth: true, credentials: ROUTE, name: 'route465.test' });
    box = await Instance.start({
      MAIL_USERS: USERS,
      RELAY_HOST: `[127.0.0.1]:${front.port}`,
      RELAY_TLS_NAME: 'smarthost.test',
      RELAY_TLS_CA_FILE: ca.cert,
      RELAY_USERNAME: RELAY.username,
      RELAY_PASSWORD: RELAY.password,
      RELAY_ROUTES: '@second.example=[127.0.0.47]:465',
      RELAY_ROUTE_CREDENTIALS: `@second.example ${ROUTE.username}:${ROUTE.password}`,
    });
  });
  after(async () => {
    await box?.destroy();
    for (const upstream of [front, route465]) await upstream?.stop();
    ca?.remove();
  });

  test('STARTTLS: the verified name goes out as SNI, so the front end shows the right certificate', async () => {
    await submit(box, ALICE, 'sni-starttls');
    const mail = await received(front, 'sni-starttls');
    assert.equal(mail.user, RELAY.username);
    assert.ok(front.servernames.length > 0 && front.servernames.every((name) => name === 'smarthost.test'), `SNI sent: ${JSON.stringify(front.servernames)}`);
    assert.ok(front.commands.some((c) => !c.tls && c.line === 'STARTTLS'));
  });

  test('a route on [host]:465 while RELAY_HOST uses STARTTLS: implicit TLS, verified against its IP address', async () => {
    await submit(box, CAROL, 'route-465');
    const mail = await received(route465, 'route-465');
    assert.equal(mail.user, ROUTE.username);
    tlsFromFirstByte(route465);
    assert.deepEqual(route465.servernames, route465.servernames.map(() => undefined), 'an IP address is never sent as SNI');
    assert.ok(logged(box, /Verified TLS connection established to 127\.0\.0\.47\[127\.0\.0\.47\]:465/));
  });
});

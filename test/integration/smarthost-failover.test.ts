// Smarthost failover: RELAY_HOST as an ordered list. Real upstreams on loopback: one not listening,
// one greeting 421, one answering MAIL with 451, one whose certificate names another host; each time
// the next smarthost delivers, exactly once, with the same credentials and its own verified TLS, and
// the log and /metrics say which smarthost it was. Both down: deferred with the reason, then
// delivered once when one comes back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, freePort, hashOf, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { counter, scrape } from '../helpers/metrics.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream, type UpstreamOptions } from '../helpers/upstream.ts';

const ALICE = `alice@${DOMAIN}`;
const OUTSIDE = 'someone@outside.example';
const RELAY = { username: 'relay-user@provider.test', password: 'relay pass #1' };

async function submit(box: Instance, subject: string): Promise<void> {
  const { client } = await SmtpClient.connect(box.ports.submission);
  await client.ehlo();
  await client.starttls();
  assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
  const { final } = await client.send(ALICE, [OUTSIDE], message(ALICE, OUTSIDE, subject));
  assert.equal(final.code, 250, final.text);
  await client.quit();
}

const carrying = (upstream: Upstream, subject: string) => upstream.messages.filter((m) => m.data.includes(`Subject: ${subject}`));
const logged = (box: Instance, pattern: RegExp) => box.logs().find((l) => pattern.test(String(l.msg)));
const hop = (port: number) => `[127.0.0.1]:${port}`;

interface Lab {
  ca: TestCa;
  first: Upstream | undefined;
  second: Upstream;
  box: Instance;
  /** The first smarthost's port (not listening when `first` is undefined). */
  firstPort: number;
}

/** A box whose RELAY_HOST lists the first smarthost (given, or a port nobody listens on), then a good one. */
async function lab(first: ((ca: TestCa) => UpstreamOptions) | undefined): Promise<Lab> {
  const ca = new TestCa();
  const upstream = first ? await Upstream.start(first(ca)) : undefined;
  const firstPort = upstream?.port ?? (await freePort());
  const second = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: RELAY, name: 'second.test' });
  const box = await Instance.start({
    MAIL_USERS: `${ALICE}:${hashOf(PASSWORD)}`,
    RELAY_HOST: `${hop(firstPort)}, ${hop(second.port)}`,
    RELAY_TLS_CA_FILE: ca.cert,
    RELAY_USERNAME: RELAY.username,
    RELAY_PASSWORD: RELAY.password,
  });
  return { ca, first: upstream, second, box, firstPort };
}

async function teardown(lab: Lab | undefined): Promise<void> {
  await lab?.box.destroy();
  await lab?.first?.stop();
  await lab?.second.stop();
  lab?.ca.remove();
}

/** Delivered by the second smarthost exactly once, verified, with the relay's credentials; counted as its delivery. */
async function deliveredBySecond(l: Lab, subject: string): Promise<void> {
  await waitFor(`${subject} at the second smarthost`, 60_000, () => carrying(l.second, subject)[0], 100);
  await l.box.waitQueueEmpty(30_000);
  assert.equal(carrying(l.second, subject).length, 1, 'exactly once');
  assert.equal(l.first ? carrying(l.first, subject).length : 0, 0);
  assert.equal(carrying(l.second, subject)[0]!.user, RELAY.username);
  assert.ok(logged(l.box, new RegExp(`Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${l.second.port}`)), 'the second smarthost verified like the first');
  assert.ok(logged(l.box, new RegExp(`to=<${OUTSIDE}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${l.second.port},.*status=sent`)), 'the log names the smarthost that delivered');
  const metrics = await scrape(l.box.url('/metrics'));
  assert.equal(counter(metrics, 'relaybox_smarthost_deliveries_total', { smarthost: hop(l.second.port), position: '2', status: 'sent' }), 1, metrics.split('\n').filter((x) => x.includes('smarthost')).join('\n'));
  assert.equal(counter(metrics, 'relaybox_smarthost_deliveries_total', { smarthost: hop(l.firstPort), position: '1', status: 'sent' }), 0);
}

describe('smarthost failover: the first smarthost does not answer', () => {
  let l: Lab;
  before(async () => (l = await lab(undefined)));
  after(() => teardown(l));

  test('delivered through the second, once; the log says the first refused the connection and which smarthost took it', async () => {
    await submit(l.box, 'first-down');
    await deliveredBySecond(l, 'first-down');
    assert.ok(logged(l.box, new RegExp(`connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${l.firstPort}: Connection refused`)));
    assert.ok(logged(l.box, new RegExp(`delivered through smarthost 2 of 2 \\(\\[127\\.0\\.0\\.1\\]:${l.second.port}\\)`)), 'the supervisor names the failover');
  });
});

describe('smarthost failover: the first answers 4xx', () => {
  let l: Lab;
  before(async () => (l = await lab((ca) => ({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: RELAY, name: 'busy.test', refuseGreeting: '421 4.3.2 Service not available, try later' }))));
  after(() => teardown(l));

  test('a 421 greeting: delivered through the second, once', async () => {
    await submit(l.box, 'first-421');
    await deliveredBySecond(l, 'first-421');
    assert.ok(l.first!.commands.length > 0, 'the first was tried');
  });
});

describe('smarthost failover: the first answers MAIL with 451', () => {
  let l: Lab;
  before(async () => (l = await lab((ca) => ({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: RELAY, name: 'greylist.test', refuseMail: '451 4.7.1 Try again later' }))));
  after(() => teardown(l));

  test('a 4xx to MAIL after AUTH: delivered through the second, once', async () => {
    await submit(l.box, 'first-451');
    await deliveredBySecond(l, 'first-451');
    assert.ok(l.first!.commands.some((c) => /^MAIL FROM/i.test(c.line)), 'the first was asked');
  });
});

describe('smarthost failover: the first shows a certificate for another name', () => {
  let l: Lab;
  before(async () => (l = await lab((ca) => ({ certificate: ca.issue('other.test'), requireAuth: true, credentials: RELAY, name: 'impostor.test' }))));
  after(() => teardown(l));

  test('verification fails on the first: it never gets the password; the second delivers; the log says why the first was skipped', async () => {
    await submit(l.box, 'first-wrong-cert');
    await deliveredBySecond(l, 'first-wrong-cert');
    assert.ok(logged(l.box, new RegExp(`certificate verification failed for 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${l.firstPort}`)));
    assert.equal(l.first!.sawAuth, false);
    assert.deepEqual(l.first!.passwords, []);
  });
});

describe('smarthost failover: every smarthost down, then one comes back', () => {
  let ca: TestCa;
  let ports: number[];
  let back: Upstream | undefined;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    ports = [await freePort(), await freePort()];
    box = await Instance.start({ MAIL_USERS: `${ALICE}:${hashOf(PASSWORD)}`, RELAY_HOST: ports.map(hop).join(','), RELAY_TLS_CA_FILE: ca.cert, RELAY_USERNAME: RELAY.username, RELAY_PASSWORD: RELAY.password });
  });
  after(async () => {
    await box?.destroy();
    await back?.stop();
    ca?.remove();
  });

  test('deferred with the reason (both tried), then delivered once by the one that came back', async () => {
    await submit(box, 'all-down');
    await waitFor('the deferral', 60_000, () => logged(box, new RegExp(`to=<${OUTSIDE}>.*status=deferred \\(connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${ports[1]}: Connection refused\\)`)), 100);
    assert.ok(logged(box, new RegExp(`connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${ports[0]}: Connection refused`)), 'the first was tried before');
    const metrics = await scrape(box.url('/metrics'));
    assert.ok(counter(metrics, 'relaybox_deliveries_deferred_total', { destination: 'upstream', reason: 'connection_failed' }) >= 1);
    back = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: RELAY, name: 'back.test', listen: { host: '127.0.0.1', port: ports[0]! } });
    await box.waitQueueEmpty(90_000, { flush: true });
    assert.equal(carrying(back, 'all-down').length, 1, 'exactly once');
    const after = await scrape(box.url('/metrics'));
    assert.equal(counter(after, 'relaybox_smarthost_deliveries_total', { smarthost: hop(ports[0]!), position: '1', status: 'sent' }), 1);
  });
});

describe('smarthost failover on a relay route', () => {
  const ROUTE = { username: 'route-user', password: 'route-secret-2' };
  const CAROL = 'carol@second.example';
  let ca: TestCa;
  let downPort: number;
  let routeSecond: Upstream;
  let main: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    downPort = await freePort();
    routeSecond = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: ROUTE, name: 'route-second.test' });
    main = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: RELAY, name: 'main.test' });
    box = await Instance.start({
      MAIL_USERS: [ALICE, CAROL].map((user) => `${user}:${hashOf(PASSWORD)}`).join('\n'),
      RELAY_HOST: hop(main.port),
      RELAY_TLS_CA_FILE: ca.cert,
      RELAY_USERNAME: RELAY.username,
      RELAY_PASSWORD: RELAY.password,
      RELAY_ROUTES: `@second.example=${hop(downPort)}, ${hop(routeSecond.port)}`,
      RELAY_ROUTE_CREDENTIALS: `@second.example ${ROUTE.username}:${ROUTE.password}`,
    });
  });
  after(async () => {
    await box?.destroy();
    await routeSecond?.stop();
    await main?.stop();
    ca?.remove();
  });

  test("the route's first smarthost down: its second delivers once, with the route's credentials, never RELAY_HOST", async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(CAROL, PASSWORD)).code, 235);
    const { final } = await client.send(CAROL, [OUTSIDE], message(CAROL, OUTSIDE, 'route-failover'));
    assert.equal(final.code, 250, final.text);
    await client.quit();
    await waitFor('route-failover at the route\'s second smarthost', 60_000, () => carrying(routeSecond, 'route-failover')[0], 100);
    await box.waitQueueEmpty(30_000);
    assert.equal(carrying(routeSecond, 'route-failover').length, 1);
    assert.equal(carrying(routeSecond, 'route-failover')[0]!.user, ROUTE.username);
    assert.equal(carrying(main, 'route-failover').length, 0);
    assert.ok(logged(box, new RegExp(`connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${downPort}: Connection refused`)));
    assert.ok(logged(box, new RegExp(`Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${routeSecond.port}`)));
    const metrics = await scrape(box.url('/metrics'));
    assert.equal(counter(metrics, 'relaybox_smarthost_deliveries_total', { smarthost: hop(routeSecond.port), position: '2', status: 'sent' }), 1);
  });
});

// The abuse defences' parts, without daemons: the file store, durable and exempt bans, the gateway
// check, the policy protocol server and Dovecot's auth policy endpoint on real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { AddressSet, defaultGateways, GatewayWatch, neverBanned, trustedGateways } from '../../src/abuse/addresses.ts';
import { AuthPolicyServer, probeAuthPolicy } from '../../src/abuse/auth-policy.ts';
import { AuthBans } from '../../src/abuse/bans.ts';
import { PolicyService, probePolicyService } from '../../src/abuse/policy-service.ts';
import { sendingPolicy } from '../../src/abuse/sending-policy.ts';
import { COUNTER_WRITE_MS, FileStore } from '../../src/abuse/store.ts';
import { deferralReason } from '../../src/metrics/metrics.ts';

const silent = pino({ level: 'silent' });
const failure = (ip: string) => ({ level: 'warn' as const, msg: `warning: unknown[${ip}]: SASL PLAIN authentication failed: x` });

function recorder() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

test('the file store: written whole (0600, via a rename), reopened with what has not lapsed', async () => {
  const dir = mkdtempSync('/tmp/rbstore-');
  let now = 1_000_000;
  const store = FileStore.open(`${dir}/state.json`, { now: () => now });
  assert.equal(await store.increment('k', 2, 60), 2);
  assert.equal(await store.increment('k', 3, 60), 5);
  await store.increment('short', 1, 1);
  await store.put('bans', { id: '192.0.2.1', until: now + 10_000 });
  await store.put('bans', { id: '192.0.2.2', until: now + 500 });
  await store.flush();
  assert.equal(statSync(`${dir}/state.json`).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['state.json'], 'no temporary file left');
  now += 2000;
  const reopened = FileStore.open(`${dir}/state.json`, { now: () => now });
  assert.equal(await reopened.get('k'), 5);
  assert.equal(await reopened.get('short'), 0, 'expired');
  assert.deepEqual((await reopened.list('bans')).map((b) => b.id), ['192.0.2.1']);
  now += 60_000;
  assert.equal(await reopened.get('k'), 0);
  assert.equal(await reopened.increment('k', 1, 60), 1, 'an expired counter starts over');
  writeFileSync(`${dir}/broken.json`, '{not json');
  assert.equal(await FileStore.open(`${dir}/broken.json`).get('k'), 0, 'an unreadable file: start empty');
});

test('the file store: a ban is on disk before put() resolves; counters at the next flush (the policy answer waits for it)', async () => {
  const dir = mkdtempSync('/tmp/rbstore-');
  const path = `${dir}/state.json`;
  const store = FileStore.open(path);
  const onDisk = () => (existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { counters: Record<string, { value: number }>; lists: { bans: Array<{ id: string }> } }) : undefined);
  await store.put('bans', { id: '192.0.2.9', until: Date.now() + 60_000 });
  assert.deepEqual(onDisk()?.lists.bans.map((b) => b.id), ['192.0.2.9'], 'the ban was written before the caller could answer');
  for (let i = 0; i < 50; i++) await store.increment('messages:alice', 1, 3600);
  assert.equal(onDisk()?.counters['messages:alice'], undefined, 'counters are not written one by one');
  await Promise.all(Array.from({ length: 20 }, () => store.flush()));
  assert.equal(onDisk()?.counters['messages:alice']?.value, 50, 'after flush() everything counted so far is on disk');
});

/** Lets pending I/O callbacks and promise jobs run (real setImmediate: only setTimeout is mocked). */
const settle = async (rounds = 50) => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
};

test('the file store: a count nobody flushed reaches the disk COUNTER_WRITE_MS later by itself (mock timers)', async (t) => {
  const dir = mkdtempSync('/tmp/rbstore-');
  const path = `${dir}/state.json`;
  const onDisk = () => (existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { counters: Record<string, { value: number }> }) : undefined);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const store = FileStore.open(path);
  await store.increment('messages:alice', 1, 3600);
  t.mock.timers.tick(COUNTER_WRITE_MS - 1);
  await settle();
  assert.equal(existsSync(path), false, 'nothing written before COUNTER_WRITE_MS');
  t.mock.timers.tick(1);
  // The write itself is real I/O: wait for the rename to land (a bounded wait, then the assertion).
  for (let i = 0; i < 2000 && onDisk() === undefined; i++) await settle(5); // up to ~10 s on a loaded machine
  assert.equal(onDisk()?.counters['messages:alice']?.value, 1, 'a count nobody flushed reaches the disk by itself');
});

test('bans are stored, restored with their remaining time, and lifted from the store when they expire', { timeout: 10_000 }, async () => {
  const dir = mkdtempSync('/tmp/rbstore-');
  const settings = { threshold: 2, windowSeconds: 60, durationSeconds: 100 };
  let now = 2_000;
  const open = () => FileStore.open(`${dir}/s.json`, { now: () => now });
  // The ban is put in force (the callback) only once it is on disk: the callback reads the file.
  let putInForce!: (seen: { addresses: string[]; stored: string[] }) => void;
  const inForce = new Promise<{ addresses: string[]; stored: string[] }>((resolve) => (putInForce = resolve));
  const storedBans = () => (existsSync(`${dir}/s.json`) ? (JSON.parse(readFileSync(`${dir}/s.json`, 'utf8')) as { lists: { bans: Array<{ id: string }> } }).lists.bans.map((b) => b.id) : []);
  const first = new AuthBans(settings, async (addresses) => putInForce({ addresses, stored: storedBans() }), silent, { store: open() });
  first.observe(failure('192.0.2.7'), 1_000);
  first.observe(failure('::ffff:192.0.2.7'), 2_000);
  assert.deepEqual(await inForce, { addresses: ['192.0.2.7'], stored: ['192.0.2.7'] }, 'put in force with the ban already on disk');
  assert.deepEqual(first.active, ['192.0.2.7'], 'an IPv4-mapped address is the same client');
  assert.equal(first.isBanned('192.0.2.7', 50_000), true);
  now = 42_000;
  const second = new AuthBans(settings, async () => {}, silent, { store: open() });
  assert.deepEqual(await second.restore(42_000), [{ address: '192.0.2.7', seconds: 60 }]);
  assert.equal(second.isBanned('::ffff:192.0.2.7', 42_000), true);
  await second.expire(102_001);
  assert.equal(second.isBanned('192.0.2.7', 102_001), false);
  await new Promise((resolve) => setImmediate(resolve));
  const third = new AuthBans(settings, async () => {}, silent, { store: open() });
  assert.deepEqual(await third.restore(42_000), [], 'the expiry reached the store');
});

test('loopback, the probe source, AUTH_BAN_EXEMPT and the gateway are never banned (said once each)', async () => {
  const { log, lines } = recorder();
  const bans = new AuthBans({ threshold: 1, windowSeconds: 60, durationSeconds: 10 }, async () => {}, log, {
    exempt: neverBanned([{ address: '198.51.100.0', prefix: 24, family: 4 }]),
    isGateway: (address) => address === '172.18.0.1',
  });
  for (const ip of ['127.0.0.1', '::1', '127.0.0.254', '198.51.100.77', '172.18.0.1', '172.18.0.1', '127.0.0.2']) bans.observe(failure(ip));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(bans.active, ['127.0.0.2'], 'other loopback addresses are clients like any (the tests use them)');
  const skipped = lines.filter((l) => l.event === 'ban_skipped');
  assert.deepEqual(skipped.map((l) => [l.address, l.reason]), [['127.0.0.1', 'exempt'], ['::1', 'exempt'], ['127.0.0.254', 'exempt'], ['198.51.100.77', 'exempt'], ['172.18.0.1', 'gateway']]);
});

test('default gateways from the routing tables; TRUSTED_NETWORKS containing one; the first client from one is reported', () => {
  const dir = mkdtempSync('/tmp/rbroute-');
  writeFileSync(`${dir}/route`, 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n');
  writeFileSync(`${dir}/route6`, '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\nfe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n');
  const gateways = defaultGateways(`${dir}/route`, `${dir}/route6`);
  assert.deepEqual(gateways, ['172.18.0.1', 'fd00:0000:0000:0000:0000:0000:0000:0001']);
  assert.equal(new AddressSet([], gateways).has('fd00::1'), true);
  assert.deepEqual(defaultGateways(`${dir}/missing`, `${dir}/missing6`), []);
  assert.deepEqual(trustedGateways([{ address: '172.16.0.0', prefix: 12, family: 4 }], gateways), ['172.18.0.1']);
  assert.deepEqual(trustedGateways([{ address: '10.0.0.0', prefix: 8, family: 4 }], gateways), []);
  const { log, lines } = recorder();
  const watch = new GatewayWatch(gateways, log);
  watch.observe({ level: 'info', program: 'postfix/smtpd', msg: 'connect from unknown[203.0.113.9]' });
  watch.observe({ level: 'info', program: 'postfix/smtpd', msg: 'connect from unknown[172.18.0.1]' });
  watch.observe({ level: 'info', msg: 'Login: user=<a@b.test>, method=PLAIN, rip=172.18.0.1, lip=172.18.0.2' });
  assert.deepEqual(lines.filter((l) => l.event === 'clients_via_gateway').map((l) => l.address), ['172.18.0.1']);
});

/** One request, as Postfix sends it, on an open connection; resolves with the action. */
function ask(socket: ReturnType<typeof connect>, attributes: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (chunk) => resolve(String(chunk)));
    socket.write(`${Object.entries(attributes).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`);
  });
}

test('the policy service speaks the delegation protocol; a failing decision is a temporary error', async () => {
  const dir = mkdtempSync('/tmp/rbpolicy-');
  const path = `${dir}/policy`;
  const asked: string[] = [];
  const service = new PolicyService({
    socketPath: path,
    owner: undefined,
    log: silent,
    decide: sendingPolicy(async ({ user, recipients }) => {
      asked.push(`${user}:${recipients}`);
      if (user === 'broken@x.test') throw new Error('store unreadable');
      return user === 'over@x.test' ? { verdict: 'limited', reply: '451 4.7.1 Sending limit reached' } : { verdict: 'accept' };
    }),
  });
  await service.start();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const socket = connect({ path });
  await new Promise((resolve) => socket.once('connect', resolve));
  const base = { request: 'smtpd_access_policy', protocol_state: 'DATA', recipient_count: '2', queue_id: 'ABC' };
  assert.equal(await ask(socket, { ...base, sasl_username: 'ok@x.test' }), 'action=DUNNO\n\n');
  assert.equal(await ask(socket, { ...base, sasl_username: 'over@x.test' }), 'action=451 4.7.1 Sending limit reached\n\n');
  assert.equal(await ask(socket, { ...base, sasl_username: 'broken@x.test' }), 'action=451 4.3.5 Sending limits cannot be checked right now; try again later\n\n');
  assert.equal(await ask(socket, { ...base, protocol_state: 'RCPT', sasl_username: 'ok@x.test' }), 'action=DUNNO\n\n', 'only DATA counts');
  assert.equal(await ask(socket, { ...base, sasl_username: '' }), 'action=DUNNO\n\n', 'no user, nothing to count');
  assert.deepEqual(asked, ['ok@x.test:2', 'over@x.test:2', 'broken@x.test:2']);
  assert.equal((await probePolicyService(path)).ok, true);
  socket.destroy();
  await service.stop();
  const down = await probePolicyService(path);
  assert.equal(down.ok, false);
  assert.equal(existsSync(path), false);
});

test("Dovecot's auth policy endpoint: banned addresses refused, a wrong key gets nothing", async () => {
  const server = new AuthPolicyServer((address) => address === '192.0.2.66', silent);
  const endpoint = await server.start();
  assert.match(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+\/policy$/);
  assert.match(endpoint.apiKey, /^[0-9a-f]{48}$/);
  const post = async (remote: string, key = endpoint.apiKey, command = 'allow') => {
    const response = await fetch(`${endpoint.url}?command=${command}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ login: 'a@b.test', remote, protocol: 'imap' }) });
    return { status: response.status, text: await response.text() };
  };
  assert.deepEqual(JSON.parse((await post('192.0.2.66')).text), { status: -1, msg: 'too many failed authentications from this address; try again later' });
  assert.deepEqual(JSON.parse((await post('192.0.2.67')).text), { status: 0, msg: '' });
  const wrong = await post('192.0.2.66', 'x'.repeat(48));
  assert.equal(wrong.status, 401);
  assert.ok(!wrong.text.includes(endpoint.apiKey));
  assert.equal((await post('192.0.2.66', endpoint.apiKey, 'report')).status, 200);
  assert.equal((await probeAuthPolicy(endpoint)).ok, true);
  assert.equal((await probeAuthPolicy({ ...endpoint, apiKey: 'nope' })).ok, false);
  await server.stop();
  assert.equal((await probeAuthPolicy(endpoint)).ok, false);
});

test('deferred deliveries are classed by reason', () => {
  assert.equal(deferralReason('Server certificate not verified'), 'tls_not_verified');
  assert.equal(deferralReason('TLS is required, but was not offered by host 192.0.2.1[192.0.2.1]'), 'tls_not_offered');
  assert.equal(deferralReason('TLSA lookup error for mx.example.com:25'), 'dane_lookup_failed');
  assert.equal(deferralReason('SASL authentication failed; cannot authenticate to server x[192.0.2.1]: no mechanism available'), 'auth_failed');
  assert.equal(deferralReason('connect to 127.0.0.1[127.0.0.1]:2525: Connection refused'), 'connection_failed');
  assert.equal(deferralReason('host x[192.0.2.1] said: 451 4.3.0 try later (in reply to RCPT TO command)'), 'upstream_refused');
  assert.equal(deferralReason('something else'), 'other');
});


// The shared abuse store against Debian's redis-server: two RedisStore clients stand for two
// replicas. Counters and lists are shared, counters expire from their first increment, a limit is
// not overrun when replicas decide at the same moment, and while the server is away every call
// fails at once (closed), then works again by itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { RedisStore } from '../../src/abuse/redis-store.ts';
import { SendLimits } from '../../src/abuse/send-limits.ts';
import { AuthBans } from '../../src/abuse/bans.ts';
import { waitFor } from '../helpers/instance.ts';
import { RedisServer } from '../helpers/redis.ts';

/** The prefix RedisStore puts before its keys (src/abuse/redis-store.ts). */
const KEY_PREFIX = 'relaybox:';

const log = pino({ level: 'silent' });

describe('RedisStore (REDIS_URL)', () => {
  let server: RedisServer;
  let a: RedisStore;
  let b: RedisStore;
  before(async () => {
    server = await RedisServer.start();
    a = new RedisStore({ url: server.url }, log);
    b = new RedisStore({ url: server.url }, log);
    assert.ok(await a.ready(10_000));
    assert.ok(await b.ready(10_000));
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await server?.remove();
  });

  test('counters are shared, and expire from their first increment (EXPIRE NX)', async () => {
    assert.equal(await a.get('messages:x@example.test:1'), 0);
    assert.equal(await a.increment('messages:x@example.test:1', 1, 3600), 1);
    assert.equal(await b.increment('messages:x@example.test:1', 2, 3600), 3);
    assert.equal(await b.get('messages:x@example.test:1'), 3);
    assert.equal(await a.increment('messages:x@example.test:1', -1, 3600), 2);

    // The expiry read from Redis itself (PTTL), not waited out.
    const pttl = () => Number(execFileSync('redis-cli', ['-p', String(server.port), 'PTTL', `${KEY_PREFIX}counter:short`], { encoding: 'utf8' }).trim());
    assert.equal(await a.increment('short', 1, 2), 1);
    const first = pttl();
    assert.ok(first > 0 && first <= 2000, `PTTL ${first} after the first increment (2 s)`);
    assert.equal(await b.increment('short', 1, 3600), 2);
    const second = pttl();
    assert.ok(second > 0 && second <= first, `a later increment must not push the expiry out: PTTL ${first} then ${second}`);
    await waitFor('the counter to expire 2 s after its first increment', 10_000, async () => ((await a.get('short')) === 0 ? true : undefined), 200);
  });

  test('lists are shared; lapsed entries are left out', async () => {
    const now = Date.now();
    await a.put('bans', { id: '192.0.2.7', until: now + 60_000 });
    await a.put('suspensions', { id: 'x@example.test', until: now + 60_000, note: 'abcdef0123456789' });
    await a.put('bans', { id: '192.0.2.8', until: now - 1 });
    assert.deepEqual(await b.list('bans'), [{ id: '192.0.2.7', until: now + 60_000 }]);
    assert.deepEqual(await b.list('suspensions'), [{ id: 'x@example.test', until: now + 60_000, note: 'abcdef0123456789' }]);
    await b.remove('bans', '192.0.2.7');
    assert.deepEqual(await a.list('bans'), []);
  });

  test('two replicas deciding at the same moment never let a user past the limit', async () => {
    const settings = { messagesPerHour: 5, recipientsPerDay: 1000, suspendThreshold: 0, overrides: [] };
    const users = [{ address: 'race@example.test', scheme: 'PLAIN' as const, hash: '{PLAIN}x' }];
    const hooks = { log, hold: async () => 0 };
    const first = new SendLimits(settings, users, a, hooks);
    const second = new SendLimits(settings, users, b, hooks);
    const verdicts = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? first : second).decide({ user: 'race@example.test', recipients: 1, queueId: `Q${i}` })));
    assert.equal(verdicts.filter((v) => v.verdict === 'accept').length, 5, JSON.stringify(verdicts.map((v) => v.verdict)));
  });

  test('a ban made through one replica is learnt by another', async () => {
    const settings = { threshold: 2, windowSeconds: 600, durationSeconds: 600 };
    const inForce: string[][] = [];
    const maker = new AuthBans(settings, async () => undefined, log, { store: a });
    const learner = new AuthBans(settings, async (addresses) => void inForce.push(addresses), log, { store: b });
    for (let i = 0; i < 2; i++) maker.observe({ level: 'warn', msg: 'warning: unknown[192.0.2.99]: SASL PLAIN authentication failed: x' });
    await waitFor('the ban in the store', 5000, async () => ((await b.list('bans')).some((ban) => ban.id === '192.0.2.99') ? true : undefined), 50);
    assert.deepEqual(await learner.learn(), ['192.0.2.99']);
    assert.ok(learner.isBanned('192.0.2.99'));
    assert.deepEqual(inForce, [['192.0.2.99']]);
    assert.deepEqual(await learner.learn(), [], 'learnt once');
  });

  test("an operator's ban and its lift on one replica act on the other (the lift is learnt too)", async () => {
    const settings = { threshold: 2, windowSeconds: 600, durationSeconds: 3600 };
    const inForce: string[][] = [];
    const here = new AuthBans(settings, async () => undefined, log, { store: a });
    const there = new AuthBans(settings, async (addresses) => void inForce.push(addresses), log, { store: b });
    assert.equal(await here.banNow('192.0.2.123', 600), true);
    await there.learn();
    assert.ok(there.isBanned('192.0.2.123'));
    assert.equal(await here.lift('192.0.2.123'), true);
    assert.equal(here.isBanned('192.0.2.123'), false);
    await there.learn();
    assert.equal(there.isBanned('192.0.2.123'), false, 'lifted on the other replica as well');
    assert.ok(!inForce.at(-1)!.includes('192.0.2.123'), 'and taken out of its Postfix map');
    assert.equal(await here.lift('192.0.2.123'), false, 'lifting what is not banned says so');
  });

  test('the server gone: every call fails at once and the probe says why; back: everything works again', async () => {
    await server.kill();
    await waitFor('the probe failing', 10_000, async () => ((await a.probe()).ok ? undefined : true), 100);
    // Refused before anything is sent (the store knows the connection is down), not after a command timeout.
    await assert.rejects(a.increment('k', 1, 60), /shared store \(Redis\) is unreachable/);
    await assert.rejects(a.get('k'), /shared store \(Redis\) is unreachable/);
    await assert.rejects(a.list('bans'), /shared store \(Redis\) is unreachable/);
    const probe = await a.probe();
    assert.match(probe.error ?? '', /^unreachable \(/);
    assert.doesNotMatch(probe.error ?? '', /redis:\/\//);

    await server.resume();
    await waitFor('the store back', 20_000, async () => ((await a.probe()).ok ? true : undefined), 200);
    assert.equal(await a.increment('k', 1, 60), 1, 'an empty server after a restart without persistence');
  });
});

// The per-user sending limits as logic: sliding windows, overrides, the refusal count that trips
// the circuit breaker, holding the queued mail, and a new password lifting the suspension.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SendLimits, type SendingSettings } from '../../src/abuse/send-limits.ts';
import { MemoryStore } from '../../src/abuse/store.ts';
import type { UserEntry } from '../../src/config/values.ts';

const HOUR = 3600_000;
const user = (address: string, hash = '{PLAIN}x'): UserEntry => ({ address, scheme: 'PLAIN', hash });

function setup(settings: Partial<SendingSettings> = {}, users = [user('a@x.test'), user('b@x.test')]) {
  let now = 10 * HOUR; // the start of an hour bucket
  const clock = { advance: (ms: number) => (now += ms) };
  const store = new MemoryStore(() => now);
  const held: string[][] = [];
  const limited: string[] = [];
  const limits = new SendLimits({ messagesPerHour: 3, recipientsPerDay: 10, suspendThreshold: 0, overrides: [], ...settings }, users, store, {
    log: pino({ level: 'silent' }),
    hold: async (ids) => (held.push(ids), ids.length),
    limited: (limit) => limited.push(limit),
    now: () => now,
  });
  let id = 0;
  const send = async (who: string, recipients = 1) => (await limits.decide({ user: who, recipients, queueId: `Q${++id}` })).verdict;
  return { limits, store, clock, held, limited, send };
}

test('messages per hour: the limit is per user, and the window slides', async () => {
  const { send, clock, limited } = setup();
  for (let i = 0; i < 3; i++) assert.equal(await send('a@x.test'), 'accept');
  assert.equal(await send('a@x.test'), 'limited');
  assert.equal(await send('b@x.test'), 'accept', 'another user has a count of their own');
  assert.equal(await send('A@X.TEST'), 'limited', 'the user name is case-insensitive');
  clock.advance(HOUR + HOUR / 2); // next bucket, half of the previous one still overlaps: 1.5 of 3
  assert.equal(await send('a@x.test'), 'accept');
  assert.equal(await send('a@x.test'), 'limited', '1.5 + 1 + 1 > 3');
  clock.advance(HOUR);
  assert.equal(await send('a@x.test'), 'accept');
  assert.deepEqual(limited, ['messages_per_hour', 'messages_per_hour', 'messages_per_hour']);
});

test('recipients per day: a message that would pass the limit is refused, a smaller one still fits', async () => {
  const { send, limits } = setup({ messagesPerHour: 0 });
  assert.equal(await send('a@x.test', 8), 'accept');
  const refused = await limits.decide({ user: 'a@x.test', recipients: 3, queueId: 'Q' });
  assert.equal(refused.verdict, 'limited');
  assert.match(refused.verdict === 'limited' ? refused.reply : '', /^451 4\.7\.1 Sending limit reached: at most 10 recipients per day/);
  assert.equal(await send('a@x.test', 2), 'accept');
  assert.equal(await send('a@x.test', 1), 'limited');
});

test('overrides per user; 0 means no limit', async () => {
  const { send } = setup({ overrides: [{ user: 'a@x.test', messagesPerHour: 1 }, { user: 'b@x.test', messagesPerHour: 0, recipientsPerDay: 0 }] });
  assert.equal(await send('a@x.test'), 'accept');
  assert.equal(await send('a@x.test'), 'limited');
  for (let i = 0; i < 50; i++) assert.equal(await send('b@x.test', 5), 'accept');
});

test('the circuit breaker: suspended after the threshold of refusals, queued mail held, the count kept per password', async () => {
  const { send, limits, held, store } = setup({ messagesPerHour: 2, suspendThreshold: 3 });
  assert.equal(await send('a@x.test'), 'accept');
  assert.equal(await send('a@x.test'), 'accept');
  assert.equal(await send('a@x.test'), 'limited');
  assert.equal(await send('a@x.test'), 'limited');
  assert.equal(await send('a@x.test'), 'suspended');
  assert.deepEqual(held, [['Q1', 'Q2']]);
  assert.deepEqual(await limits.suspendedUsers(), ['a@x.test']);
  const reply = await limits.decide({ user: 'a@x.test', recipients: 1, queueId: 'Q9' });
  assert.deepEqual(reply.verdict, 'suspended');
  assert.match(reply.verdict === 'suspended' ? reply.reply : '', /^550 5\.7\.1 /);
  assert.equal(await send('b@x.test'), 'accept');
  assert.equal((await store.list('suspensions'))[0]?.note?.length, 16, 'a fingerprint of the hash, never the hash');

  await limits.configure({ messagesPerHour: 2, recipientsPerDay: 10, suspendThreshold: 3, overrides: [] }, [user('a@x.test'), user('b@x.test')]);
  assert.deepEqual(await limits.suspendedUsers(), ['a@x.test'], 'same password: still suspended');
  await limits.configure({ messagesPerHour: 2, recipientsPerDay: 10, suspendThreshold: 3, overrides: [] }, [user('a@x.test', '{PLAIN}new'), user('b@x.test')]);
  assert.deepEqual(await limits.suspendedUsers(), []);
  assert.equal(await send('a@x.test'), 'limited', 'the hourly limit still holds, the refusals start over');
  assert.equal(await send('a@x.test'), 'limited');
});

test('threshold 0 never suspends', async () => {
  const { send, limits } = setup({ messagesPerHour: 1, suspendThreshold: 0 });
  await send('a@x.test');
  for (let i = 0; i < 100; i++) assert.equal(await send('a@x.test'), 'limited');
  assert.deepEqual(await limits.suspendedUsers(), []);
});

test('concurrent decisions of one user cannot both take the last message', async () => {
  const { limits } = setup({ messagesPerHour: 1 });
  const verdicts = await Promise.all(Array.from({ length: 5 }, (_, i) => limits.decide({ user: 'a@x.test', recipients: 1, queueId: `C${i}` })));
  assert.equal(verdicts.filter((v) => v.verdict === 'accept').length, 1);
});

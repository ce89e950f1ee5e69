// Per-user sending limits through the supervisor's Postfix policy service, against the real daemons:
// messages per hour and recipients per day answered 451 4.7.1 at DATA, overrides per user, counters
// that survive a restart, a temporary error (never acceptance) when the policy service is gone, its
// probe in /ready, and the compromised-account circuit breaker (hold, suspend, lift on a new password).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DOMAIN, hashOf, Instance, PASSWORD, Sink, waitFor } from '../helpers/instance.ts';
import { counter, gauge } from '../helpers/metrics.ts';
import { authenticated, submit, type Reply } from '../helpers/smtp.ts';

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const CAROL = `carol@${DOMAIN}`;

/** One authenticated message; the reply that ended it (DATA's own reply when DATA is refused). */
const attempt = (box: Instance, user: string, recipients: string[], subject: string, password = PASSWORD): Promise<Reply> => submit(box.ports, user, recipients, subject, { password });

async function metrics(box: Instance): Promise<string> {
  const text = await (await fetch(box.url('/metrics'))).text();
  box.bodies.push(text);
  return text;
}

const outside = (n: number) => Array.from({ length: n }, (_, i) => `r${i}@outside.example`);

describe('per-user sending limits', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({
      MAIL_USERS: [ALICE, BOB, CAROL].map((user) => `${user}:${hashOf(PASSWORD)}`).join('\n'),
      SEND_LIMIT_MESSAGES: '100',
      SEND_LIMITS: `${ALICE}:2/h ${BOB}:50/h:3/d`,
      SEND_SUSPEND_THRESHOLD: '0',
    });
  });
  after(async () => {
    await box.destroy();
  });

  test('messages per hour: the third message of a 2/h user gets 451 4.7.1 at DATA; others unaffected', async () => {
    for (const n of [1, 2]) assert.equal((await attempt(box, ALICE, outside(1), `alice-${n}`)).code, 250);
    const refused = await attempt(box, ALICE, outside(1), 'alice-3');
    assert.equal(refused.code, 451, refused.text);
    assert.equal(refused.enhanced, '4.7.1');
    assert.match(refused.text, /<DATA>: Data command rejected: Sending limit reached: at most 2 messages per hour/);
    assert.equal((await attempt(box, CAROL, outside(1), 'carol-1')).code, 250, 'the default limit is per user');
    const event = await waitFor('the rate_limited event', 10_000, () => box.logs().find((l) => l.event === 'rate_limited' && l.user === ALICE));
    assert.equal(event.limit, 'messages_per_hour');
    const text = await metrics(box);
    assert.equal(gauge(text, 'relaybox_rate_limited_total', { limit: 'messages_per_hour' }), 1, 'counted (the series must exist)');
    await waitFor('the rejection in the metrics', 10_000, async () => counter(await metrics(box), 'relaybox_smtp_rejections_total', { reason: 'rate_limited' }) >= 1 || undefined);
    assert.doesNotMatch(text, /@relaybox\.test|@outside\.example/, 'no addresses in metrics');
  });

  test('recipients per day: a message that would pass 3 recipients is refused, a smaller one fits', async () => {
    assert.equal((await attempt(box, BOB, outside(2), 'bob-2-rcpts')).code, 250);
    const refused = await attempt(box, BOB, outside(2), 'bob-2-more');
    assert.equal(refused.code, 451, refused.text);
    assert.match(refused.text, /at most 3 recipients per day/);
    assert.equal((await attempt(box, BOB, outside(1), 'bob-last-one')).code, 250);
  });

  test('the policy service killed (the supervisor, with -9): 451 4.3.5, never acceptance; counters survive the restart', async () => {
    const before = box.sink.messages().length;
    const { client, auth } = await authenticated(box.ports, CAROL);
    assert.equal(auth.code, 235);
    assert.equal((await client.cmd(`MAIL FROM:<${CAROL}>`)).code, 250);
    assert.equal((await client.cmd('RCPT TO:<x@outside.example>')).code, 250);
    box.child?.kill('SIGKILL');
    await box.exit;
    const data = await client.cmd('DATA', 60_000);
    client.destroy();
    assert.equal(data.code, 451, `${data.code} ${data.text}`);
    assert.equal(data.enhanced, '4.3.5');
    assert.match(data.text, /policy service is unavailable/);

    box.launch();
    await box.waitReady();
    const still = await attempt(box, ALICE, outside(1), 'alice-after-restart');
    assert.equal(still.code, 451, `alice's count must survive the restart: ${still.text}`);
    assert.equal((await attempt(box, CAROL, outside(1), 'carol-after-restart')).code, 250);
    await waitFor("carol's message at the upstream", 20_000, () => box.sink.messages().find((m) => m.includes('Subject: carol-after-restart')), 100);
    assert.ok(!box.sink.messages().slice(before).some((m) => /Subject: alice-after-restart/.test(m)));
  });

  test('the policy socket removed: /ready names the failing check, then the service listens again', async () => {
    rmSync(`${box.stateDir}/queue/private/relaybox-policy`);
    const failing = await waitFor('/ready to fail', 20_000, async () => {
      const ready = await box.get('/ready');
      return ready.status === 503 ? ready.body : undefined;
    }, 100);
    const checks = failing.checks as Record<string, { ok: boolean; error?: string }>;
    assert.equal(checks['sending-policy']?.ok, false, JSON.stringify(checks));
    await box.waitReady(30_000);
    assert.ok(box.logs().some((l) => l.event === 'service_recover' && l.check === 'sending-policy'));
    assert.equal((await attempt(box, CAROL, outside(1), 'carol-after-recovery')).code, 250);
  });
});

describe('compromised-account circuit breaker', () => {
  let box: Instance;
  let usersFile: string;
  before(async () => {
    const sink = await Sink.start();
    sink.stop(); // the upstream is down: accepted mail stays in the queue
    usersFile = `/tmp/rb-users-${process.pid}-${Date.now()}`;
    writeFileSync(usersFile, `${ALICE}:${hashOf(PASSWORD)}\n`);
    box = await Instance.start({ MAIL_USERS: `${BOB}:${hashOf(PASSWORD)}`, MAIL_USERS_FILE: usersFile, SEND_LIMITS: `${ALICE}:2/h`, SEND_SUSPEND_THRESHOLD: '2' }, { sink });
  });
  after(async () => {
    await box.destroy();
    rmSync(usersFile, { force: true });
  });

  test('past the threshold the account is suspended, its queued mail held, and it stays so across a restart', async () => {
    for (const n of [1, 2]) assert.equal((await attempt(box, ALICE, outside(1), `queued-${n}`)).code, 250);
    await waitFor('both deferred', 20_000, () => (box.logs().filter((l) => /status=deferred/.test(String(l.msg))).length >= 2 ? true : undefined), 100);
    assert.equal((await attempt(box, ALICE, outside(1), 'refused-1')).code, 451);
    const tripped = await attempt(box, ALICE, outside(1), 'refused-2');
    assert.equal(tripped.code, 550, tripped.text);
    assert.equal(tripped.enhanced, '5.7.1');
    assert.match(tripped.text, /suspended/);
    const event = await waitFor('user_suspended', 10_000, () => box.logs().find((l) => l.event === 'user_suspended' && l.user === ALICE));
    assert.equal(event.held, 2);
    const text = await metrics(box);
    assert.equal(gauge(text, 'relaybox_queue_messages', { queue: 'hold' }), 2);
    assert.equal(gauge(text, 'relaybox_users_suspended'), 1);
    assert.equal((await attempt(box, BOB, outside(1), 'bob-unaffected')).code, 250);

    assert.equal(await box.stop(), 0);
    const suspensions = box.logs().filter((l) => l.event === 'user_suspended').length;
    box.launch();
    await box.waitReady();
    assert.equal(gauge(await metrics(box), 'relaybox_users_suspended'), 1, 'the suspension was kept');
    const after = await attempt(box, ALICE, outside(1), 'after-restart');
    assert.equal(after.code, 550, `still suspended after a restart: ${after.text}`);
    assert.equal(box.logs().filter((l) => l.event === 'user_suspended').length, suspensions, 'the kept suspension, not a new one');
  });

  test('a new password lifts the suspension (the hourly limit still applies)', async () => {
    const newPassword = 'a brand new password 42';
    writeFileSync(usersFile, `${ALICE}:${hashOf(newPassword)}\n`);
    await waitFor('user_unsuspended', 20_000, () => box.logs().find((l) => l.event === 'user_unsuspended' && l.user === ALICE), 100);
    const reply = await attempt(box, ALICE, outside(1), 'after-new-password', newPassword);
    assert.equal(reply.code, 451, `no longer suspended, still over 2/h: ${reply.text}`);
    assert.match(readFileSync(`${box.stateDir}/abuse-state.json`, 'utf8'), /"suspensions":\[\]/);
  });
});

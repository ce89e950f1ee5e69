// Chaos: mail in flight from several senders while Postfix's master, Dovecot's master and their
// children are killed with -9 at random (at least 20 kills). Every message that got 250 after DATA
// must arrive (upstream or in the Maildir); duplicates are counted and reported; afterwards /health
// is 200 and SIGTERM stops everything cleanly. A longer run belongs to `npm run bench`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, processesIn, waitFor } from '../helpers/instance.ts';
import { arrivals, runChaos, type Sender } from '../helpers/chaos.ts';
import { incompleteQueueFiles } from '../helpers/queue.ts';

const KILLS = 24;

test(`chaos: ${KILLS} random kill -9 of the masters and their children while mail flows; every accepted message arrives`, { timeout: 10 * 60_000 }, async (t) => {
  const seed = Number(process.env.RELAYBOX_CHAOS_SEED) || Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed} (repeat with RELAYBOX_CHAOS_SEED=${seed})`);
  // Kills come faster than the 10 s after which a restart counts as healthy: the restart budget and
  // the ban threshold must not end the run (both have their own tests).
  const box = await Instance.start({ RESTART_BUDGET: '1000', AUTH_BAN_THRESHOLD: '0', AUTH_FAILURE_DELAY: '0', AUTH_RATE_LIMIT: '0' });
  try {
    const alice = `alice@${DOMAIN}`;
    const bob = `bob@${DOMAIN}`;
    const senders: Sender[] = [
      { kind: 'submission', from: alice, password: PASSWORD, to: 'carol@outside.example' },
      { kind: 'submissions', from: bob, password: PASSWORD, to: 'dave@outside.example' },
      { kind: 'submission', from: alice, password: PASSWORD, to: bob },
      { kind: 'inbound', from: 'erin@outside.example', to: bob },
      { kind: 'inbound', from: 'frank@outside.example', to: alice },
    ];
    const result = await runChaos({ stateDir: box.stateDir, ports: box.ports, senders, kills: KILLS, pauseMs: [150, 900], seed });
    const byTarget = Object.entries(Object.groupBy(result.kills, (k) => k.target)).map(([target, kills]) => `${target} ${kills!.length}`);
    t.diagnostic(`${result.kills.length} kills in ${result.durationMs} ms (${byTarget.join(', ')}): ${result.kills.map((k) => k.name).join(' ')}`);
    t.diagnostic(`${result.attempts} transactions, ${result.accepted.length} accepted with 250, ${result.uncertain.length} without a final reply; errors ${JSON.stringify(result.errors)}`);

    // runChaos stops at KILLS kills; each kill of a master must have cost that daemon a restart.
    const masterKills = (target: string) => result.kills.filter((k) => k.target === target).length;
    await box.waitReady(60_000);
    const restarts = (await box.get('/health')).body.daemons as Record<string, { restarts: number }>;
    assert.ok(restarts.postfix!.restarts >= masterKills('postfix master'), `postfix: ${restarts.postfix!.restarts} restarts for ${masterKills('postfix master')} master kills`);
    assert.ok(restarts.dovecot!.restarts >= masterKills('dovecot master'), `dovecot: ${restarts.dovecot!.restarts} restarts for ${masterKills('dovecot master')} master kills`);
    for (const target of ['postfix master', 'dovecot master', 'postfix child', 'dovecot child']) {
      assert.ok(result.kills.some((k) => k.target === target), `no ${target} was killed (seed ${seed})`);
    }
    // Mail did flow through the chaos, on every path.
    for (const [index, sender] of senders.entries()) {
      assert.ok(result.accepted.some((m) => m.sender === index), `sender ${index} (${sender.kind} to ${sender.to}) never got a 250`);
    }

    // The supervisor brings both daemons back; deferred mail (say, an upstream or LMTP delivery cut
    // by a kill) is retried now instead of after Postfix's backoff; then nothing is left to deliver.
    await box.waitReady(60_000);
    await box.waitQueueEmpty(120_000, { flush: true });
    const litter = incompleteQueueFiles(`${box.stateDir}/queue`);
    if (litter.length) t.diagnostic(`${litter.length} incomplete queue files left by killed cleanup processes (never acknowledged, never delivered): ${litter.join(' ')}`);

    const counts = arrivals(box.sink, box.stateDir);
    const missing = result.accepted.filter((m) => !counts.has(m.id));
    const duplicates = [...counts].filter(([, count]) => count > 1);
    const uncertainArrived = result.uncertain.filter((m) => counts.has(m.id)).length;
    t.diagnostic(`arrived: ${counts.size} distinct; duplicates: ${duplicates.length}${duplicates.length ? ` (${duplicates.map(([id, n]) => `${id} x${n}`).join(', ')})` : ''}; of the messages without a final reply ${uncertainArrived} arrived`);
    assert.deepEqual(missing.map((m) => `${m.id} to ${m.to}`), [], 'messages accepted with 250 that never arrived');
    const known = new Set([...result.accepted, ...result.uncertain].map((m) => m.id));
    assert.deepEqual([...counts.keys()].filter((id) => !known.has(id)), [], 'arrivals of messages that were refused');

    const health = await box.get('/health');
    assert.equal(health.status, 200, health.text);
    assert.equal(await box.stop(), 0);
    assert.ok(box.logs().some((l) => l.event === 'stopped'), 'no "stopped" event');
    assert.ok(!box.logs().some((l) => l.event === 'shutdown_timeout'), 'the stop ran into the shutdown deadline');
    await waitFor('processes to be gone', 5000, () => (processesIn(box.stateDir).length === 0 ? true : undefined)).catch(() => undefined);
    assert.deepEqual(processesIn(box.stateDir), []);
  } finally {
    await box.destroy();
  }
});

// Nothing the test started may keep this process alive once it has passed (a forgotten 120 s timer
// once made the file take minutes longer than its test).
after(() => {
  const left = process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout');
  assert.deepEqual(left, [], 'timers still pending after the chaos test');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRestart, NO_HISTORY, type RestartDecision, type RestartHistory } from '../../src/supervision/restart-policy.ts';

const POLICY = { startSecsMs: 10_000, backoffBaseMs: 250, backoffCapMs: 30_000, budget: 10, windowMs: 300_000 };

/** Restarts at the given times, each after the daemon ran `ranForMs`; the decisions in order. */
function series(events: Array<{ at: number; ranForMs: number }>, policy = POLICY): RestartDecision[] {
  let history: RestartHistory = NO_HISTORY;
  return events.map(({ at, ranForMs }) => {
    const decision = decideRestart(history, at, ranForMs, policy);
    history = decision.history;
    return decision;
  });
}

const delays = (decisions: RestartDecision[]) => decisions.map((d) => (d.verdict === 'restart' ? d.delayMs : 'give-up'));

test('the first restart is immediate', () => {
  assert.deepEqual(delays(series([{ at: 0, ranForMs: 500 }])), [0]);
});

test('a daemon that keeps dying soon after it starts waits twice as long each time, up to the cap', () => {
  const quick = Array.from({ length: 10 }, (_, i) => ({ at: i * 1000, ranForMs: 100 }));
  assert.deepEqual(delays(series(quick, { ...POLICY, budget: 100 })), [0, 250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
});

test('a daemon that ran healthy for a while is restarted at once, however often it died before', () => {
  const events = [
    { at: 0, ranForMs: 100 },
    { at: 1000, ranForMs: 100 },
    { at: 2000, ranForMs: 100 },
    { at: 60_000, ranForMs: 58_000 },
    { at: 61_000, ranForMs: 100 },
  ];
  assert.deepEqual(delays(series(events)), [0, 250, 500, 0, 0]);
});

test('a failed start counts as a quick death', () => {
  assert.deepEqual(delays(series([{ at: 0, ranForMs: 30_000 }, { at: 100, ranForMs: 0 }, { at: 400, ranForMs: 0 }, { at: 900, ranForMs: 0 }])), [0, 0, 250, 500]);
});

test('more than the budget within the window: give up, naming how many restarts there were', () => {
  const events = Array.from({ length: 4 }, (_, i) => ({ at: i * 20_000, ranForMs: 20_000 }));
  const decisions = series(events, { ...POLICY, budget: 3 });
  assert.deepEqual(delays(decisions), [0, 0, 0, 'give-up']);
  const last = decisions.at(-1)!;
  assert.equal(last.verdict === 'give-up' && last.restartsInWindow, 3);
});

test('the window slides: restarts older than it no longer count against the budget', () => {
  const events = [0, 100_000, 200_000, 301_000, 401_000].map((at) => ({ at, ranForMs: 60_000 }));
  const decisions = series(events, { ...POLICY, budget: 3 });
  assert.deepEqual(delays(decisions), [0, 0, 0, 0, 0]);
  assert.deepEqual(decisions.at(-1)!.history.times, [200_000, 301_000, 401_000]);
});

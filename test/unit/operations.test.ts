// The operations' pure parts: postqueue -j parsed, queue filters checked (a bad one named, never
// ignored), counts by state and destination, and DKIM keys from DKIM_KEY_DIR never rotated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { matchesEnvelope, parsePostqueue, parseQueueFilter, queueSummary } from '../../src/operations/queue-read.ts';
import { DkimOperations } from '../../src/operations/dkim.ts';
import { Audit } from '../../src/operations/audit.ts';
import { statePaths } from '../../src/render/paths.ts';
import type { Config } from '../../src/config/schema.ts';
import { pino } from 'pino';

const NOW = 1_800_000_000_000;
const POSTQUEUE = [
  '{"queue_name": "deferred", "queue_id": "4ABCDEF123", "arrival_time": 1799996400, "message_size": 812, "forced_expire": false, "sender": "alice@relaybox.test", "recipients": [{"address": "x@outside.example", "delay_reason": "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused"}]}',
  '{"queue_name": "hold", "queue_id": "4BCDEFA234", "arrival_time": 1799999940, "message_size": 400, "forced_expire": false, "sender": "bob@relaybox.test", "recipients": [{"address": "y@other.example"}, {"address": "z@outside.example"}]}',
].join('\n');

test('postqueue -j: id, state, age, size, sender, recipients and the last deferral reason', () => {
  const [deferred, held] = parsePostqueue(POSTQUEUE, NOW);
  assert.deepEqual(deferred, { id: '4ABCDEF123', state: 'deferred', arrival: 1799996400, ageSeconds: 3600, size: 812, sender: 'alice@relaybox.test', recipients: [{ address: 'x@outside.example', reason: 'connect to 127.0.0.1[127.0.0.1]:2525: Connection refused' }], reason: 'connect to 127.0.0.1[127.0.0.1]:2525: Connection refused' });
  assert.equal(held!.state, 'hold');
  assert.equal(held!.reason, undefined);
  assert.deepEqual(queueSummary([deferred!, held!]), { total: 2, byState: { active: 0, deferred: 1, hold: 1, incoming: 0, maildrop: 0 }, byDestination: { 'outside.example': 2, 'other.example': 1 }, oldestSeconds: 3600 });
});

test('queue filters: each one applied; a wrong one refused by name', () => {
  const messages = parsePostqueue(POSTQUEUE, NOW);
  const ids = (raw: Record<string, string>) => messages.filter((m) => matchesEnvelope(m, parseQueueFilter(raw))).map((m) => m.id);
  assert.deepEqual(ids({ state: 'hold' }), ['4BCDEFA234']);
  assert.deepEqual(ids({ sender: 'ALICE@' }), ['4ABCDEF123']);
  assert.deepEqual(ids({ recipient: 'other.example' }), ['4BCDEFA234']);
  assert.deepEqual(ids({ 'older-than': '30m' }), ['4ABCDEF123']);
  assert.deepEqual(ids({ 'newer-than': '5m' }), ['4BCDEFA234']);
  assert.deepEqual(ids({ id: '4BCDEFA234' }), ['4BCDEFA234']);
  assert.deepEqual(ids({}), ['4ABCDEF123', '4BCDEFA234']);
  assert.throws(() => parseQueueFilter({ state: 'frozen' }), /state: "frozen" is not a queue state/);
  assert.throws(() => parseQueueFilter({ colour: 'red' }), /unknown filter "colour"/);
  assert.throws(() => parseQueueFilter({ 'older-than': '1 week' }), /older-than: "1 week" is not a duration/);
  assert.throws(() => parseQueueFilter({ id: '../../etc' }), /not a Postfix queue id/);
  assert.throws(() => parseQueueFilter({ sender: 'a b' }), /sender: "a b" is not \(part of\) an address/);
});

test('DKIM keys from DKIM_KEY_DIR are reported read-only and never rotated', async () => {
  const stateDir = mkdtempSync('/tmp/rbt-ops-');
  const config = { domains: ['relaybox.test'], hostname: 'mail.relaybox.test', dnsServers: [{ address: '127.0.0.1', port: 9 }], dkim: { keyDir: '/run/secrets/dkim', signing: [{ domain: 'relaybox.test', selectors: ['k1'] }] } } as unknown as Config;
  const actions: string[] = [];
  const dkim = new DkimOperations(() => config, statePaths(stateDir), async () => assert.fail('nothing re-signs'), new Audit(pino({ level: 'silent' }), (a) => actions.push(a)));
  const who = { who: 'test', via: 'unit' };
  await assert.rejects(dkim.start('relaybox.test', undefined, who), /the keys come from DKIM_KEY_DIR \(\/run\/secrets\/dkim\), which relaybox never writes/);
  await assert.rejects(dkim.verify('relaybox.test', {}, who), /DKIM_KEY_DIR/);
  await assert.rejects(dkim.start('other.example', undefined, who), /other\.example is not signed for/);
  const [listed] = await dkim.list();
  assert.equal(listed!.keysFrom, 'DKIM_KEY_DIR');
  assert.equal(listed!.rotatable, false);
  assert.deepEqual(actions, []);
});

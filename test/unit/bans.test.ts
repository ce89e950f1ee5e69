import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { AuthBans, authFailure } from '../../src/abuse/bans.ts';
import { banMapFile } from '../../src/render/postfix.ts';
import { statePaths } from '../../src/render/paths.ts';

test('failed authentications are read from Postfix and Dovecot lines', () => {
  assert.deepEqual(authFailure({ level: 'warn', msg: 'warning: unknown[192.0.2.7]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=a@b.test' }), { address: '192.0.2.7', count: 1 });
  assert.deepEqual(authFailure({ level: 'info', msg: 'Disconnected: Connection closed (auth failed, 3 attempts in 6 secs): user=<a@b.test>, method=PLAIN, rip=2001:db8::7, lip=::1, TLS' }), { address: '2001:db8::7', count: 3 });
  assert.equal(authFailure({ level: 'info', msg: 'connect from unknown[192.0.2.7]' }), undefined);
});

test('threshold within the window bans, the ban expires, the list is put in force each time', async () => {
  const applied: string[][] = [];
  const bans = new AuthBans({ threshold: 3, windowSeconds: 60, durationSeconds: 10 }, async (addresses) => void applied.push(addresses), pino({ level: 'silent' }));
  const fail = (ip: string, at: number) => bans.observe({ level: 'warn', msg: `warning: unknown[${ip}]: SASL LOGIN authentication failed: x` }, at);
  fail('192.0.2.1', 0);
  fail('192.0.2.1', 70_000); // the first fell out of the window
  fail('192.0.2.1', 71_000);
  assert.deepEqual(bans.active, []);
  fail('192.0.2.1', 72_000);
  fail('198.51.100.9', 72_000);
  assert.deepEqual(bans.active, ['192.0.2.1']);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(applied, [['192.0.2.1']]);
  await bans.expire(81_000);
  assert.deepEqual(bans.active, ['192.0.2.1']);
  await bans.expire(82_001);
  assert.deepEqual(bans.active, []);
  assert.deepEqual(applied, [['192.0.2.1'], []]);
  bans.stop();
});

test('threshold 0 never bans', () => {
  const bans = new AuthBans({ threshold: 0, windowSeconds: 60, durationSeconds: 10 }, async () => {}, pino({ level: 'silent' }));
  for (let i = 0; i < 100; i++) bans.observe({ level: 'warn', msg: 'warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: x' }, i);
  assert.deepEqual(bans.active, []);
});

test('the ban map refuses each banned address at connect', () => {
  const map = banMapFile(statePaths('/srv/rb'), ['192.0.2.1', '2001:db8::7']);
  assert.equal(map.path, '/srv/rb/postfix/banned_clients');
  assert.match(map.content, /^192\.0\.2\.1 REJECT too many failed authentications/m);
  assert.match(map.content, /^2001:db8::7 REJECT /m);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDovecotLine } from '../../src/daemons/dovecot.ts';
import { parsePostfixLine } from '../../src/daemons/postfix.ts';
import { isProbeLine } from '../../src/protocol/probes.ts';

test('Postfix lines: program, pid, level from the warning/fatal prefix', () => {
  assert.deepEqual(parsePostfixLine('Nov 26 02:08:07 mail postfix/submission/smtpd[21262]: warning: hostname x does not resolve'), {
    level: 'warn',
    msg: 'warning: hostname x does not resolve',
    program: 'postfix/submission/smtpd',
    pid: 21262,
  });
  assert.equal(parsePostfixLine('Nov  6 02:08:07 mail postfix/master[1]: fatal: bind 0.0.0.0 port 25: Address already in use').level, 'fatal');
  assert.deepEqual(parsePostfixLine('Terminated'), { level: 'info', msg: 'Terminated' });
});

test('Dovecot lines: process and level', () => {
  assert.deepEqual(parseDovecotLine('auth: Error: passwd-file /x: missing'), { level: 'error', program: 'auth', msg: 'passwd-file /x: missing' });
  assert.equal(parseDovecotLine('imap-login: Info: Login: user=<alice@example.com>').level, 'info');
});

test('the supervisor recognises its own probe connections in daemon logs', () => {
  assert.ok(isProbeLine('connect from unknown[127.0.0.254]'));
  assert.ok(isProbeLine('Disconnected (no auth attempts in 0 secs): user=<>, rip=127.0.0.254, lip=127.0.0.1'));
  assert.ok(!isProbeLine('connect from localhost[127.0.0.1]'));
});

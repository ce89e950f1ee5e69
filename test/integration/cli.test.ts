// The CLI's other commands, and the rendered files checked by Postfix's and Dovecot's own parsers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { baseEnv, freePorts, runCli } from '../helpers/instance.ts';

test('check-config prints the effective config with secrets masked and exits 0', async () => {
  const stateDir = mkdtempSync('/tmp/rbcli-');
  const env = { ...baseEnv(stateDir, await freePorts(), 2525), RELAY_USERNAME: 'relay-user', RELAY_PASSWORD: 'relay-secret-value' };
  const result = await runCli(['check-config'], env);
  assert.equal(result.code, 0, result.stderr);
  const config = JSON.parse(result.stdout) as { hostname: string; users: Array<{ hash: string }> };
  assert.equal(config.hostname, 'mail.relaybox.test');
  assert.equal(config.users.length, 2, 'alice and bob');
  assert.ok(config.users.every((u) => u.hash === '***'));
  assert.ok(!result.stdout.includes('relay-secret-value') && !result.stdout.includes('$6$'));
});

const variants: Array<Record<string, string>> = [
  {},
  { TRUSTED_NETWORKS: '198.51.100.0/24, 2001:db8::/32', RELAY_USERNAME: 'u', RELAY_PASSWORD: 'p', PORT_IMAP: '0', PORT_SMTP: '0' },
  { BIND_ADDRESS: '::1', MAIL_DOMAINS: '', MAIL_ALIASES: '', MAILBOX_QUOTA: '1G' },
  { MAIL_ALIASES: 'team@relaybox.test:alice@relaybox.test @relaybox.test:bob@relaybox.test', MAILBOX_QUOTA: '2G' },
];
for (const variant of variants) {
  test(`check-config --render: postconf -n and doveconf -n accept the files with no warning ${JSON.stringify(variant)}`, async () => {
    const stateDir = mkdtempSync('/tmp/rbcli-');
    const out = mkdtempSync('/tmp/rbrender-');
    const env = { ...baseEnv(stateDir, await freePorts(), 2525), ...variant };
    const result = await runCli(['check-config', '--render', out], env);
    assert.equal(result.code, 0, result.stderr);
    const postconf = spawnSync('postconf', ['-c', `${out}/postfix`, '-n'], { encoding: 'utf8' });
    assert.equal(postconf.status, 0);
    assert.equal(postconf.stderr, '', postconf.stderr);
    assert.match(postconf.stdout, /smtpd_sasl_type = dovecot/);
    const masterCheck = spawnSync('postconf', ['-c', `${out}/postfix`, '-M'], { encoding: 'utf8' });
    assert.equal(masterCheck.stderr, '', masterCheck.stderr);
    const doveconf = spawnSync('doveconf', ['-c', `${out}/dovecot/dovecot.conf`, '-n'], { encoding: 'utf8' });
    assert.equal(doveconf.status, 0, doveconf.stderr);
    assert.equal(doveconf.stderr, '', doveconf.stderr);
    assert.equal(statSync(`${out}/dovecot/passwd`).mode & 0o777, 0o640);
  });
}

test('hash-password reads stdin and prints a hash Dovecot verifies', async () => {
  for (const scheme of ['SHA512-CRYPT', 'ARGON2ID']) {
    const result = await runCli(['hash-password', '--scheme', scheme], {}, 'pa ss:word\n');
    assert.equal(result.code, 0, result.stderr);
    const hash = result.stdout.trim();
    assert.ok(hash.startsWith(`{${scheme}}`), hash);
    const verify = spawnSync('doveadm', ['-O', 'pw', '-t', hash, '-p', 'pa ss:word'], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
  }
});

test('hash-password makes BLF-CRYPT by default: ~2.5 ms of CPU per AUTH where ARGON2ID takes ~130 ms (BENCHMARKS.md)', async () => {
  const result = await runCli(['hash-password'], {}, 'a password\n');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^\{BLF-CRYPT\}\$2y\$/);
});

test('hash-password refuses an empty password and an unknown scheme', async () => {
  assert.equal((await runCli(['hash-password'], {}, '')).code, 2);
  const bad = await runCli(['hash-password', '--scheme', 'MD5'], {}, 'x\n');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--scheme MD5 is not supported/);
});

test('an unknown command is an error that lists the commands', async () => {
  const result = await runCli(['launch'], {});
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown command "launch"/);
  assert.match(result.stderr, /check-config/);
});

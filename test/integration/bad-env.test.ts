// Bad environments: `relaybox run` exits 2 naming the variable, starts no daemon, writes nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { baseEnv, freePorts, hashOf, processesMentioning, runCli } from '../helpers/instance.ts';

const scratch = mkdtempSync('/tmp/rbbad-');
const notPem = `${scratch}/not.pem`;
writeFileSync(notPem, 'hello\n');
const usersFile = `${scratch}/users`;
writeFileSync(usersFile, `alice@relaybox.test:${hashOf('x')}\n`);
const unreadable = `${scratch}/missing-dir/secret`;

type Case = { name: string; env: Record<string, string | undefined>; variables: string[] };

const cases: Case[] = [
  { name: 'missing MAIL_HOSTNAME', env: { MAIL_HOSTNAME: undefined }, variables: ['MAIL_HOSTNAME'] },
  { name: 'MAIL_HOSTNAME not a FQDN', env: { MAIL_HOSTNAME: 'not_a_host' }, variables: ['MAIL_HOSTNAME'] },
  { name: 'single-label MAIL_HOSTNAME', env: { MAIL_HOSTNAME: 'localhost' }, variables: ['MAIL_HOSTNAME'] },
  { name: 'bad domain in MAIL_DOMAINS', env: { MAIL_DOMAINS: 'relaybox.test, bad..domain' }, variables: ['MAIL_DOMAINS'] },
  { name: 'CIDR prefix too long', env: { TRUSTED_NETWORKS: '10.0.0.0/33' }, variables: ['TRUSTED_NETWORKS'] },
  { name: 'CIDR that is not an address', env: { TRUSTED_NETWORKS: '192.0.2.0/24, banana' }, variables: ['TRUSTED_NETWORKS'] },
  { name: 'port out of range', env: { PORT_SMTP: '99999' }, variables: ['PORT_SMTP'] },
  { name: 'port not a number', env: { PORT_SUBMISSION: 'abc' }, variables: ['PORT_SUBMISSION'] },
  { name: 'two listeners on one port', env: { PORT_IMAPS: '2525', PORT_SMTP: '2525' }, variables: ['PORT_IMAPS'] },
  { name: 'duplicate user across MAIL_USERS and MAIL_USERS_FILE', env: { MAIL_USERS_FILE: usersFile }, variables: ['MAIL_USERS_FILE'] },
  { name: 'unknown hash scheme', env: { MAIL_USERS: 'carol@relaybox.test:{MD5}0123456789abcdef' }, variables: ['MAIL_USERS'] },
  { name: 'user entry without a hash', env: { MAIL_USERS: 'carol@relaybox.test' }, variables: ['MAIL_USERS'] },
  { name: 'unreadable MAIL_USERS_FILE', env: { MAIL_USERS_FILE: unreadable }, variables: ['MAIL_USERS_FILE'] },
  { name: 'unreadable RELAY_PASSWORD_FILE', env: { RELAY_USERNAME: 'relay-user', RELAY_PASSWORD_FILE: unreadable }, variables: ['RELAY_PASSWORD_FILE'] },
  { name: 'bad RELAY_HOST', env: { RELAY_HOST: 'smtp example:25x' }, variables: ['RELAY_HOST'] },
  { name: 'RELAY_HOST port out of range', env: { RELAY_HOST: '[smtp.example.com]:70000' }, variables: ['RELAY_HOST'] },
  { name: 'relay user without password', env: { RELAY_USERNAME: 'relay-user' }, variables: ['RELAY_PASSWORD'] },
  { name: 'certificate without key', env: { TLS_CERT_FILE: notPem }, variables: ['TLS_CERT_FILE'] },
  { name: 'alias for a domain that is not local', env: { MAIL_ALIASES: 'info@elsewhere.example:alice@relaybox.test' }, variables: ['MAIL_ALIASES'] },
  { name: 'alias with a bad target', env: { MAIL_ALIASES: 'info@relaybox.test:not an address' }, variables: ['MAIL_ALIASES'] },
  { name: 'MAILBOX_QUOTA not a size', env: { MAILBOX_QUOTA: 'lots' }, variables: ['MAILBOX_QUOTA'] },
  { name: 'AUTH_BAN_WINDOW not a duration', env: { AUTH_BAN_WINDOW: 'ten minutes' }, variables: ['AUTH_BAN_WINDOW'] },
  { name: 'LOG_LEVEL unknown', env: { LOG_LEVEL: 'loud' }, variables: ['LOG_LEVEL'] },
  { name: 'MESSAGE_SIZE_LIMIT negative', env: { MESSAGE_SIZE_LIMIT: '-5' }, variables: ['MESSAGE_SIZE_LIMIT'] },
  { name: 'BIND_ADDRESS not an IP', env: { BIND_ADDRESS: 'localhost' }, variables: ['BIND_ADDRESS'] },
  { name: 'relative STATE_DIR', env: { STATE_DIR: 'var/relaybox' }, variables: ['STATE_DIR'] },
  { name: 'several problems at once are all reported', env: { MAIL_HOSTNAME: 'bad_host', PORT_HTTP: '-1', LOG_FORMAT: 'xml' }, variables: ['MAIL_HOSTNAME', 'PORT_HTTP', 'LOG_FORMAT'] },
];

describe('bad environments', async () => {
  const ports = await freePorts();
  for (const { name, env, variables } of cases) {
    test(`${name}: exit 2, names ${variables.join(', ')}, starts nothing`, async () => {
      const stateDir = `${scratch}/state-${variables.join('-')}-${Math.random().toString(36).slice(2, 8)}`;
      const full: Record<string, string> = { ...baseEnv(stateDir, ports, 2) };
      for (const [key, value] of Object.entries(env)) {
        if (value === undefined) delete full[key];
        else full[key] = value;
      }
      const result = await runCli(['run'], full);
      assert.equal(result.code, 2, result.stderr);
      const errorLines = result.stderr.split('\n').filter((line) => line.startsWith('relaybox: ') && !line.includes('configuration is invalid'));
      for (const variable of variables) {
        assert.ok(errorLines.some((line) => line.includes(variable)), `no error line names ${variable}:\n${result.stderr}`);
      }
      assert.ok(!result.stderr.includes('$6$') && !result.stdout.includes('$6$'), 'a password hash was printed');
      assert.equal(existsSync(stateDir), false, 'STATE_DIR was created for a bad config');
      assert.deepEqual(processesMentioning(stateDir), [], 'a process was started for a bad config');
      const check = await runCli(['check-config'], full);
      assert.equal(check.code, 2);
    });
  }

  test('a secret in a bad combination is never printed', async () => {
    const stateDir = `${scratch}/state-secret`;
    const env = { ...baseEnv(stateDir, ports, 2), RELAY_PASSWORD: 'pa55-w0rd-do-not-print' };
    const result = await runCli(['run'], env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /RELAY_USERNAME/);
    assert.ok(!`${result.stdout}${result.stderr}`.includes('pa55-w0rd-do-not-print'));
  });

  test('an existing STATE_DIR is left untouched by a bad config', async () => {
    const stateDir = mkdtempSync('/tmp/rbbad-existing-');
    writeFileSync(`${stateDir}/marker`, 'keep');
    chmodSync(`${stateDir}/marker`, 0o600);
    const env = { ...baseEnv(stateDir, ports, 2), PORT_SMTP: 'seventy' };
    const result = await runCli(['run'], env);
    assert.equal(result.code, 2);
    assert.equal(existsSync(`${stateDir}/postfix`), false);
    assert.equal(existsSync(`${stateDir}/marker`), true);
  });
});

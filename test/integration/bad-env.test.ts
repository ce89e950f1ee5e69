// Bad environments: `relaybox run` exits 2 naming the variable, starts no daemon, writes nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { defaultGateways } from '../../src/config/networks.ts';
import { baseEnv, freePorts, hashOf, processesMentioning, runCli } from '../helpers/instance.ts';

const scratch = mkdtempSync('/tmp/rbbad-');
// mkdtemp makes it 0700: the daemon users could not enter it, which is a case of its own below.
chmodSync(scratch, 0o755);
const closed = `${scratch}/closed`;
mkdirSync(closed, { mode: 0o700 });
const gateway = defaultGateways()[0];
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
  { name: 'smtps: on a plaintext port', env: { RELAY_HOST: 'smtps:[smtp.example.com]:587' }, variables: ['RELAY_HOST'] },
  { name: 'one smarthost in two TLS modes', env: { RELAY_HOST: '[smtp.example.com]:2465', RELAY_ROUTES: '@b.example=smtps:[smtp.example.com]:2465' }, variables: ['RELAY_ROUTES'] },
  { name: 'unreadable SRS_SECRET_FILE', env: { SRS_SECRET_FILE: unreadable }, variables: ['SRS_SECRET_FILE'] },
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
  { name: 'TRUSTED_NETWORKS containing the default gateway', env: { TRUSTED_NETWORKS: `${gateway ?? 'no-default-gateway-on-this-machine'}/32` }, variables: ['TRUSTED_NETWORKS', 'TRUSTED_NETWORKS_INCLUDE_GATEWAY'] },
  { name: 'STATE_DIR under a directory the daemon users cannot enter (0700)', env: { STATE_DIR: `${closed}/state` }, variables: ['STATE_DIR', closed, 'postfix', 'dovecot', 'opendkim', 'chmod o+x'] },
  { name: 'several problems at once are all reported', env: { MAIL_HOSTNAME: 'bad_host', PORT_HTTP: '-1', LOG_FORMAT: 'xml' }, variables: ['MAIL_HOSTNAME', 'PORT_HTTP', 'LOG_FORMAT'] },
];

describe('bad environments', async () => {
  const ports = await freePorts();
  for (const [index, { name, env, variables }] of cases.entries()) {
    test(`${name}: exit 2, names ${variables.join(", ")}, starts nothing`, async () => {
      // Short and free of the variables' names, so that no error about the path itself can name them.
      const stateDir = env.STATE_DIR ?? `${scratch}/case-${index}`;
      const full: Record<string, string> = { ...baseEnv(stateDir, ports, 2) };
      for (const [key, value] of Object.entries(env)) {
        if (value === undefined) delete full[key];
        else full[key] = value;
      }
      // A `run` that starts is stopped after 20 s, and fails the check below.
      const result = await runCli(['run'], full, undefined, 20_000);
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

  test('TRUSTED_NETWORKS_INCLUDE_GATEWAY=yes allows the gateway, with a warning', async () => {
    assert.ok(gateway, 'this machine has no default gateway to test with');
    const env = { ...baseEnv(`${scratch}/state-gateway-allowed`, ports, 2), TRUSTED_NETWORKS: `${gateway}/32`, TRUSTED_NETWORKS_INCLUDE_GATEWAY: 'yes' };
    const check = await runCli(['check-config'], env);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, new RegExp(`warning: TRUSTED_NETWORKS contains ${gateway.replaceAll('.', '\\.')}`));
  });

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

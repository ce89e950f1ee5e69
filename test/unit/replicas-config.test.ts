// ROLE and the replica settings as configuration: what each role listens on and runs, what a split
// role refuses to invent on its own (named by check-config), and the secrets it masks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, maskedConfig } from '../../src/config/load.ts';
import { parseRedisUrl, parseServiceAddress } from '../../src/config/areas/replicas.ts';
import { enabledListeners } from '../../src/listeners.ts';

const HASH = '{SHA512-CRYPT}$6$abcdefgh$0123456789';
const dir = mkdtempSync(join(tmpdir(), 'relaybox-replicas-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=mail.example.com', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`], { stdio: 'ignore' });
writeFileSync(`${dir}/users`, `alice@example.com:${HASH}\n`);
writeFileSync(`${dir}/handoff`, 'a-long-enough-handoff-password\n');
mkdirSync(`${dir}/dkim`);
writeFileSync(`${dir}/dkim/example.com.relaybox.key`, execFileSync('openssl', ['genrsa', '1024'], { stdio: ['ignore', 'pipe', 'ignore'] }));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const files = { TLS_CERT_FILE: `${dir}/cert.pem`, TLS_KEY_FILE: `${dir}/key.pem`, MAIL_USERS_FILE: `${dir}/users` };
const base = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com' };
const relay = { ...base, ...files, ROLE: 'relay', DKIM_KEY_DIR: `${dir}/dkim`, MAILBOX_LMTP_HOST: 'relaybox-mailbox-lmtp:24', REDIS_URL: 'redis://:pw@redis:6379/0', HANDOFF_PEERS: 'relaybox-relay-peers:10025', HANDOFF_PASSWORD_FILE: `${dir}/handoff` };
const mailbox = { ...base, ...files, ROLE: 'mailbox', REDIS_URL: 'redis://redis:6379' };

function config(env: Record<string, string>) {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

/** The error line about `name` (`NAME: ...` or `NAME="value": ...`). */
const about = (name: string) => (error: string) => error.startsWith(`${name}:`) || error.startsWith(`${name}=`);

function errors(env: Record<string, string>): string[] {
  const result = loadConfig(env);
  assert.equal(result.ok, false, 'expected the configuration to be refused');
  return result.ok ? [] : result.errors;
}

test('ROLE=all (the default) is the single box: no LMTP or handoff listener, nothing shared', () => {
  const c = config({ ...base, MAIL_USERS: `alice@example.com:${HASH}` });
  assert.equal(c.role, 'all');
  assert.deepEqual(enabledListeners(c.ports).map((l) => l.name), ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'http']);
  assert.equal(c.redis, undefined);
  assert.equal(c.handoff, undefined);
});

test('ROLE=relay listens on 25, 587, 465, the handoff port and HTTP; signs; no IMAP, no LMTP', () => {
  const c = config(relay);
  assert.deepEqual(enabledListeners(c.ports).map((l) => `${l.name}:${l.port}`), ['smtp:25', 'submission:587', 'submissions:465', 'handoff:10025', 'http:8080']);
  assert.deepEqual(c.mailboxLmtp, { host: 'relaybox-mailbox-lmtp', port: 24 });
  assert.deepEqual(c.handoff?.peers, [{ host: 'relaybox-relay-peers', port: 10025 }]);
  assert.equal(c.handoff?.account, 'relaybox-handoff');
  assert.ok(c.dkim, 'the relays sign');
  assert.deepEqual(c.drain, { drainSeconds: 15, handoffSeconds: 20 });
});

test('ROLE=mailbox listens on IMAP, LMTP and HTTP only; neither signs nor filters', () => {
  const c = config(mailbox);
  assert.deepEqual(enabledListeners(c.ports).map((l) => `${l.name}:${l.port}`), ['imap:143', 'imaps:993', 'lmtp:24', 'http:8080']);
  assert.equal(c.dkim, undefined);
  assert.equal(c.filter, undefined);
  assert.equal(c.handoff, undefined);
});

test('a split role refuses what a replica would invent on its own, naming each variable', () => {
  const bare = errors({ ...base, ROLE: 'relay' });
  for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'MAIL_USERS_FILE', 'DKIM_KEY_DIR', 'MAILBOX_LMTP_HOST', 'REDIS_URL', 'HANDOFF_PEERS']) {
    assert.ok(bare.some(about(name)), `${name} is not named:\n${bare.join('\n')}`);
  }
  const box = errors({ MAIL_HOSTNAME: 'mail.example.com', ROLE: 'mailbox', MAIL_USERS: `alice@example.com:${HASH}` });
  for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'MAIL_USERS_FILE', 'MAIL_DOMAINS']) assert.ok(box.some(about(name)), `${name}:\n${box.join('\n')}`);
  assert.ok(errors({ ...relay, HANDOFF_PASSWORD_FILE: '' }).some(about('HANDOFF_PASSWORD_FILE')));
  assert.ok(errors({ ...relay, HANDOFF_PASSWORD_FILE: '', HANDOFF_PASSWORD: 'short' }).some((e) => /HANDOFF_PASSWORD: .*shorter than 16/.test(e)));
  assert.ok(errors({ ...relay, MAILBOX_QUOTA: '1G' }).some(about('MAILBOX_QUOTA')), 'the quota belongs on the mailbox replica');
  assert.ok(config({ ...relay, DKIM_KEY_DIR: '', DKIM_SIGNING: 'off' }), 'no keys needed when not signing');
  assert.ok(config({ ...relay, MAIL_DOMAINS: '', MAILBOX_LMTP_HOST: '', DKIM_DOMAINS: 'example.com' }), 'a relay without local domains needs no mailbox');
});

test('one relay on its own: SINGLE_RELAY=yes instead of Redis and peers; contradictions refused', () => {
  const c = config({ ...relay, REDIS_URL: '', HANDOFF_PEERS: '', HANDOFF_PASSWORD_FILE: '', SINGLE_RELAY: 'yes' });
  assert.equal(c.redis, undefined);
  assert.equal(c.handoff, undefined);
  assert.equal(c.ports.handoff, 0, 'no handoff listener without peers');
  assert.ok(errors({ ...relay, SINGLE_RELAY: 'yes' }).some(about('HANDOFF_PEERS')));
  for (const name of ['MAILBOX_LMTP_HOST', 'HANDOFF_PEERS', 'SINGLE_RELAY']) {
    assert.ok(errors({ ...mailbox, [name]: name === 'SINGLE_RELAY' ? 'yes' : 'x:1' }).some((e) => about(name)(e) && /only for ROLE=relay/.test(e)), name);
  }
});

test('the Redis URL and the handoff password are secrets: masked, never shown in an error', () => {
  const c = config({ ...relay, HANDOFF_PASSWORD_FILE: '', HANDOFF_PASSWORD: 'another-handoff-password-1234' });
  const text = JSON.stringify(maskedConfig(c));
  assert.ok(!text.includes('pw@redis') && !text.includes('another-handoff-password-1234'), text);
  const bad = errors({ ...relay, REDIS_URL: 'http://:secretpw@redis:6379' });
  assert.ok(bad.some(about('REDIS_URL')));
  assert.ok(!bad.join('\n').includes('secretpw'));
});

test('addresses and URLs: Kubernetes service names, IPs, ports; Redis over TCP, TLS or a unix socket', () => {
  assert.deepEqual(parseServiceAddress('relaybox-mailbox-lmtp', 24), { ok: true, value: { host: 'relaybox-mailbox-lmtp', port: 24 } });
  assert.deepEqual(parseServiceAddress('10.0.0.7:2424', 24), { ok: true, value: { host: '10.0.0.7', port: 2424 } });
  assert.deepEqual(parseServiceAddress('[fd00::7]:24', 24), { ok: true, value: { host: 'fd00::7', port: 24 } });
  for (const bad of ['a b:24', 'host:99999', 'under_score:24', '[not-v6]:24']) assert.equal(parseServiceAddress(bad, 24).ok, false, bad);
  assert.equal(parseRedisUrl('rediss://:pw@valkey.example:6380/1').ok, true);
  assert.deepEqual(parseRedisUrl('unix:///run/redis/redis.sock'), { ok: true, value: { url: 'unix:///run/redis/redis.sock', socketPath: '/run/redis/redis.sock' } });
  for (const bad of ['redis:///', 'http://redis:6379', 'redis://redis:6379/abc', 'not a url']) assert.equal(parseRedisUrl(bad).ok, false, bad);
});

test('per role, only its listeners must have distinct ports', () => {
  assert.ok(config({ ...mailbox, PORT_SMTP: '24' }), 'port 25 is not served by the mailbox replica');
  assert.ok(errors({ ...mailbox, PORT_LMTP: '143' }).some(about('PORT_LMTP')));
});

test('relaybox check-config names what a relay replica is missing and exits 2, starting nothing', () => {
  const result = spawnSync(process.execPath, [fileURLToPath(new URL('../../src/cli.ts', import.meta.url)), 'check-config'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', ROLE: 'relay', HANDOFF_PASSWORD: 'never-shown-handoff-password' },
    encoding: 'utf8',
  });
  assert.equal(result.status, 2, result.stderr);
  for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'MAIL_USERS_FILE', 'DKIM_KEY_DIR', 'MAILBOX_LMTP_HOST', 'REDIS_URL', 'HANDOFF_PEERS']) assert.match(result.stderr, new RegExp(`relaybox: ${name}[:=]`), name);
  assert.doesNotMatch(result.stderr + result.stdout, /never-shown-handoff-password/);
});

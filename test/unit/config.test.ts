import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, maskedConfig } from '../../src/config/load.ts';
import { parseCidr, parseRelayHost, parseUserEntry } from '../../src/config/values.ts';

const HASH = '{SHA512-CRYPT}$6$abcdefgh$0123456789';
const good = { MAIL_HOSTNAME: 'Mail.Example.COM', MAIL_DOMAINS: 'example.com, Example.org', MAIL_USERS: `alice@example.com:${HASH}\nbob@example.org:{PLAIN}pw`, RELAY_HOST: '[smtp.example.net]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD: 'p' };

test('a good environment gives a typed config with defaults', () => {
  const result = loadConfig(good);
  assert.ok(result.ok);
  const { config, warnings } = result;
  assert.equal(config.hostname, 'mail.example.com');
  assert.deepEqual(config.domains, ['example.com', 'example.org']);
  assert.deepEqual(config.ports, { smtp: 25, submission: 587, submissions: 465, imap: 143, imaps: 993, lmtp: 0, handoff: 0, http: 8080 });
  assert.equal(config.stateDir, '/var/lib/relaybox');
  assert.equal(config.messageSizeLimit, 26214400);
  assert.deepEqual(config.relay, { hops: [{ host: 'smtp.example.net', port: 587, noMx: true, implicitTls: false, tlsName: 'smtp.example.net' }], implicitTls: false, credentials: { username: 'u', password: 'p' } });
  assert.deepEqual(config.trustedNetworks, []);
  assert.equal(config.users.length, 2);
  assert.match(warnings.join('\n'), /bob@example\.org uses \{PLAIN\}/);
});

test('unknown variables are ignored, ports may be 0', () => {
  const result = loadConfig({ ...good, SOMETHING_ELSE: 'x', RELAYBOX_PORT: 'tcp://10.0.0.1:25', PORT_IMAP: '0' });
  assert.ok(result.ok);
  assert.equal(result.config.ports.imap, 0);
});

test('masking hides hashes and the relay password', () => {
  const result = loadConfig(good);
  assert.ok(result.ok);
  const text = JSON.stringify(maskedConfig(result.config));
  assert.ok(!text.includes('$6$') && !text.includes('{PLAIN}pw') && !text.includes('"p"'));
  assert.match(text, /alice@example\.com/);
});

test('every problem is reported at once, one line each, naming the variable', () => {
  const result = loadConfig({ MAIL_HOSTNAME: 'x', PORT_SMTP: '70000', TRUSTED_NETWORKS: '10.0.0.0/8,300.1.1.1/8', LOG_LEVEL: 'verbose' });
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.equal(result.errors.length, 4, result.errors.join('\n'));
  for (const name of ['MAIL_HOSTNAME', 'PORT_SMTP', 'TRUSTED_NETWORKS', 'LOG_LEVEL']) assert.ok(result.errors.some((e) => e.startsWith(name)), name);
  assert.match(result.errors.find((e) => e.startsWith('TRUSTED_NETWORKS'))!, /"300\.1\.1\.1\/8"/);
});

test('secret values are never echoed in errors', () => {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_USERS: 'alice@example.com:{MD5}supersecrethash' });
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.ok(!result.errors.join('\n').includes('supersecrethash'));
  assert.match(result.errors.join('\n'), /unknown scheme \{MD5\}/);
});

test('value parsers', () => {
  assert.deepEqual(parseCidr('2001:db8::/32'), { ok: true, value: { address: '2001:db8::', prefix: 32, family: 6 } });
  assert.equal(parseCidr('10.0.0.0/33').ok, false);
  assert.deepEqual(parseRelayHost('smtp.example.com'), { ok: true, value: { host: 'smtp.example.com', port: 25, noMx: false } });
  assert.deepEqual(parseRelayHost('[127.0.0.1]:2525'), { ok: true, value: { host: '127.0.0.1', port: 2525, noMx: true } });
  assert.equal(parseRelayHost('host:0').ok, false);
  assert.equal(parseUserEntry('"quoted"@example.com:{PLAIN}x').ok, false);
  assert.equal(parseUserEntry('alice@example.com:{ARGON2ID}').ok, false);
  assert.deepEqual(parseUserEntry('Alice@Example.com:{blf-crypt}$2y$05$abc'), { ok: true, value: { address: 'alice@example.com', scheme: 'BLF-CRYPT', hash: '{blf-crypt}$2y$05$abc' } });
});

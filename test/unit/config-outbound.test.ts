// Validation of the outbound variables: every bad value is an error naming the variable and what
// would be valid, and a password never appears in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadConfig, maskedConfig } from '../../src/config/load.ts';
import { parseRoute, parseRouteCredentials, parseSendLimit, parseSmarthost, passwordProblem, usernameProblem } from '../../src/config/outbound-values.ts';

const BASE = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{SHA512-CRYPT}$6$x$y bob@b.example:{SHA512-CRYPT}$6$x$z' };
const RELAY = { RELAY_HOST: '[smtp.provider.example]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD: 'p4ss' };

function errors(env: Record<string, string>): string[] {
  const result = loadConfig({ ...BASE, ...env });
  return result.ok ? [] : result.errors;
}

function only(env: Record<string, string>, variable: string, pattern: RegExp): string {
  const found = errors(env);
  assert.equal(found.length, 1, found.join('\n'));
  assert.ok(found[0]!.startsWith(`${variable}`), found[0]);
  assert.match(found[0]!, pattern);
  return found[0]!;
}

test('relay credentials that would break the texthash row are refused, the password never shown', () => {
  only({ ...RELAY, RELAY_USERNAME: 'us:er' }, 'RELAY_USERNAME', /contains ":"/);
  only({ ...RELAY, RELAY_USERNAME: 'us er' }, 'RELAY_USERNAME', /whitespace/);
  for (const password of [' leading', 'trailing ']) {
    const error = only({ ...RELAY, RELAY_PASSWORD: password }, 'RELAY_PASSWORD', /starts or ends with whitespace/);
    assert.ok(!error.includes(password.trim()), error);
  }
  assert.deepEqual(errors({ ...RELAY, RELAY_PASSWORD: 'inner  spaces # " \\ $x :colon' }), [], 'everything else is taken literally');
  const dir = mkdtempSync('/tmp/rbcfg-');
  writeFileSync(`${dir}/user`, 'a:b\n');
  writeFileSync(`${dir}/pass`, 'secret \n');
  only({ RELAY_HOST: RELAY.RELAY_HOST, RELAY_USERNAME_FILE: `${dir}/user`, RELAY_PASSWORD: 'p' }, 'RELAY_USERNAME_FILE', /contains ":"/);
  only({ RELAY_HOST: RELAY.RELAY_HOST, RELAY_USERNAME: 'u', RELAY_PASSWORD_FILE: `${dir}/pass` }, 'RELAY_PASSWORD_FILE', /whitespace/);
  assert.equal(usernameProblem('a\uFFFDb')?.includes('UTF-8'), true);
  assert.equal(passwordProblem('a\tb')?.includes('tab'), true);
});

test('RELAY_TLS: verify by default with credentials, may refused with them, encrypt warned', () => {
  const verified = loadConfig({ ...BASE, ...RELAY });
  assert.ok(verified.ok);
  assert.equal(verified.config.relayTls.level, undefined, 'unset: the renderer verifies where credentials go');
  assert.deepEqual(verified.warnings, []);
  only({ ...RELAY, RELAY_TLS: 'may' }, 'RELAY_TLS', /may would send the relay password without TLS/);
  only({ ...RELAY, RELAY_TLS: 'none' }, 'RELAY_TLS', /one of verify, encrypt, may/);
  const encrypt = loadConfig({ ...BASE, ...RELAY, RELAY_TLS: 'encrypt' });
  assert.ok(encrypt.ok);
  assert.match(encrypt.warnings.join('\n'), /RELAY_TLS=encrypt: the smarthost's certificate is not verified/);
  assert.ok(loadConfig({ ...BASE, RELAY_HOST: '[relay.example.net]:25', RELAY_TLS: 'may' }).ok, 'may without credentials is fine');
  only({ RELAY_TLS: 'verify' }, 'RELAY_TLS', /set one of them/);
  only({ ...RELAY, RELAY_TLS_NAME: 'not a name!' }, 'RELAY_TLS_NAME', /host name/);
  only({ RELAY_TLS_NAME: 'smarthost.test' }, 'RELAY_TLS_NAME', /set RELAY_HOST too/);
  only({ ...RELAY, RELAY_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'RELAY_TLS_CA_FILE', /cannot read the file/);
});

test('RELAY_ROUTES and their credentials', () => {
  assert.deepEqual(parseRoute('@B.Example=[smtp.second.example]:587'), { ok: true, value: { sender: '@b.example', host: 'smtp.second.example', port: 587, noMx: true, implicitTls: false } });
  assert.equal(parseRoute('b.example=[smtp.second.example]:587').ok, false);
  assert.equal(parseRoute('@b.example').ok, false);
  assert.deepEqual(parseRouteCredentials('@b.example user@b.example:pass with spaces'), { ok: true, value: { sender: '@b.example', username: 'user@b.example', password: 'pass with spaces' } });
  only({ RELAY_ROUTES: '@b.example=[smtp.x.example]:99999' }, 'RELAY_ROUTES', /port must be 1-65535/);
  only({ RELAY_ROUTES: 'b.example=[smtp.x.example]:587' }, 'RELAY_ROUTES', /"b\.example" is neither @domain nor/);
  only({ RELAY_ROUTES: '@b.example=[a.example]:25 @b.example=[c.example]:25' }, 'RELAY_ROUTES', /more than one route/);
  const noRoute = only({ RELAY_ROUTE_CREDENTIALS: '@c.example user:routepass' }, 'RELAY_ROUTE_CREDENTIALS', /@c\.example has credentials but no route/);
  assert.ok(!noRoute.includes('routepass'));
  const bad = only({ RELAY_ROUTES: '@b.example=[a.example]:25', RELAY_ROUTE_CREDENTIALS: '@b.example us:er routepass ' }, 'RELAY_ROUTE_CREDENTIALS', /@b\.example: the password starts or ends with whitespace/);
  assert.ok(!bad.includes('routepass'), bad);
  only({ RELAY_ROUTES: '@b.example=[a.example]:25', RELAY_ROUTE_CREDENTIALS: '@b.example user:p', RELAY_TLS: 'may' }, 'RELAY_TLS', /may would send/);
  const dir = mkdtempSync('/tmp/rbcfg-');
  writeFileSync(`${dir}/routes`, '# comment\n@b.example user:p w\n');
  const result = loadConfig({ ...BASE, RELAY_ROUTES: '@b.example=[a.example]:25', RELAY_ROUTE_CREDENTIALS_FILE: `${dir}/routes` });
  assert.ok(result.ok);
  assert.deepEqual(result.config.relayRoutes, [{ sender: '@b.example', host: 'a.example', port: 25, noMx: true, implicitTls: false, credentials: { username: 'user', password: 'p w' } }]);
  assert.doesNotMatch(JSON.stringify(maskedConfig(result.config)), /"p w"/);
});

test('implicit TLS to a smarthost: by port 465 or an smtps: prefix; contradictions refused, naming the variable', () => {
  assert.deepEqual(parseSmarthost('[smtp.example.com]:465'), { ok: true, value: { host: 'smtp.example.com', port: 465, noMx: true, implicitTls: true } });
  assert.deepEqual(parseSmarthost('SMTPS:[smtp.example.com]:2465'), { ok: true, value: { host: 'smtp.example.com', port: 2465, noMx: true, implicitTls: true } });
  assert.deepEqual(parseSmarthost('smtp.example.com:587'), { ok: true, value: { host: 'smtp.example.com', port: 587, noMx: false, implicitTls: false } });
  assert.deepEqual(parseRoute('@b.example=smtps:[smtp.second.example]:2465'), { ok: true, value: { sender: '@b.example', host: 'smtp.second.example', port: 2465, noMx: true, implicitTls: true } });
  only({ RELAY_HOST: 'smtps:[smtp.example.com]:587' }, 'RELAY_HOST', /port 587 greets in plaintext and offers STARTTLS/);
  only({ RELAY_HOST: 'smtps:[smtp.example.com]:25' }, 'RELAY_HOST', /port 25 greets in plaintext/);
  only({ RELAY_HOST: 'smtps:' }, 'RELAY_HOST', /prefix smtps: for implicit TLS/);
  only({ RELAY_ROUTES: '@b.example=smtps:[smtp.x.example]:587' }, 'RELAY_ROUTES', /@b\.example: smtps: asks for TLS from the first byte/);
  assert.deepEqual(errors({ RELAY_HOST: '[smtp.example.com]:465', RELAY_ROUTES: '@b.example=[smtp.example.com]:465 @c.example=smtps:[smtp.x.example]:2465 @d.example=[smtp.x.example]:587' }), []);
  const mixed = only({ RELAY_ROUTES: '@b.example=smtps:[smtp.x.example]:2465 @c.example=[smtp.x.example]:2465' }, 'RELAY_ROUTES', /@c\.example reaches \[smtp\.x\.example\]:2465 with STARTTLS, but @b\.example reaches the same smarthost with implicit TLS/);
  assert.ok(mixed);
  only({ RELAY_HOST: '[smtp.x.example]:2465', RELAY_ROUTES: '@b.example=smtps:[smtp.x.example]:2465' }, 'RELAY_ROUTES', /but RELAY_HOST reaches the same smarthost with STARTTLS/);
});

test('SEND_LIMITS overrides name real users; the limits and the suspension threshold are bounded', () => {
  assert.deepEqual(parseSendLimit('Alice@Example.com:200/h:5000/d'), { ok: true, value: { user: 'alice@example.com', messagesPerHour: 200, recipientsPerDay: 5000 } });
  assert.deepEqual(parseSendLimit('alice@example.com:0/d'), { ok: true, value: { user: 'alice@example.com', recipientsPerDay: 0 } });
  for (const bad of ['alice@example.com', 'alice@example.com:5/m', 'alice@example.com:5/h:6/h', 'alice:5/h']) assert.equal(parseSendLimit(bad).ok, false, bad);
  only({ SEND_LIMITS: 'carol@example.com:5/h' }, 'SEND_LIMITS', /carol@example\.com is not a user in MAIL_USERS/);
  only({ SEND_LIMITS: 'alice@example.com:5/x' }, 'SEND_LIMITS', /is not N\/h or N\/d/);
  only({ SEND_LIMIT_MESSAGES: '-1' }, 'SEND_LIMIT_MESSAGES', /whole number of messages per hour/);
  only({ SEND_SUSPEND_THRESHOLD: 'lots' }, 'SEND_SUSPEND_THRESHOLD', /whole number/);
  const result = loadConfig({ ...BASE, SEND_LIMITS: 'alice@example.com:5/h' });
  assert.ok(result.ok);
  assert.deepEqual(result.config.sending, { messagesPerHour: 100, recipientsPerDay: 1000, suspendThreshold: 50, overrides: [{ user: 'alice@example.com', messagesPerHour: 5 }] });
});

test('POSTMASTER_ADDRESS: an address; in a local domain, a user or alias', () => {
  assert.ok(loadConfig({ ...BASE, POSTMASTER_ADDRESS: 'boss@outside.example' }).ok);
  assert.ok(loadConfig({ ...BASE, POSTMASTER_ADDRESS: 'alice@example.com' }).ok);
  assert.ok(loadConfig({ ...BASE, POSTMASTER_ADDRESS: 'team@example.com', MAIL_ALIASES: 'team@example.com:alice@example.com' }).ok);
  only({ POSTMASTER_ADDRESS: 'nobody@example.com' }, 'POSTMASTER_ADDRESS', /neither a user nor an alias/);
  only({ POSTMASTER_ADDRESS: 'not an address' }, 'POSTMASTER_ADDRESS', /an address such as/);
});

test('AUTH_BAN_EXEMPT: CIDRs', () => {
  const result = loadConfig({ ...BASE, AUTH_BAN_EXEMPT: '192.0.2.0/24, 2001:db8::1' });
  assert.ok(result.ok);
  assert.deepEqual(result.config.banExempt, [{ address: '192.0.2.0', prefix: 24, family: 4 }, { address: '2001:db8::1', prefix: 128, family: 6 }]);
  only({ AUTH_BAN_EXEMPT: '192.0.2.0/33' }, 'AUTH_BAN_EXEMPT', /prefix length/);
});

// RELAY_HOST as a failover list: every smarthost parsed like a single one, duplicates and mixed TLS
// modes refused naming RELAY_HOST; rendered as relayhost's ordered list with a policy row (name, SNI)
// and the credentials for each; and the delivery lines mapped back to the configured smarthost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config/load.ts';
import { renderAll } from '../../src/render/index.ts';
import { renderMainCf } from '../../src/render/postfix.ts';
import { statePaths } from '../../src/render/paths.ts';
import type { RenderInput } from '../../src/render/types.ts';
import { configuredSmarthosts, SmarthostDeliveries, smarthostOf } from '../../src/metrics/smarthosts.ts';

const BASE = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a', STATE_DIR: '/srv/rb' };
const CREDENTIALS = { RELAY_USERNAME: 'u@provider.example', RELAY_PASSWORD: 'p4ss word' };
const PATHS = statePaths('/srv/rb');

function errors(env: Record<string, string>): string[] {
  const result = loadConfig({ ...BASE, ...env });
  return result.ok ? [] : result.errors;
}

function input(env: Record<string, string>): RenderInput {
  const result = loadConfig({ ...BASE, ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return { config: result.config, users: result.config.users, tls: { certFile: '/c', keyFile: '/k' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [] } as unknown as RenderInput;
}
const settings = (text: string) => new Map(text.split('\n').filter((l) => /^\w+ = ?/.test(l)).map((l) => [l.slice(0, l.indexOf(' =')), l.slice(l.indexOf('=') + 1).trim()]));
const main = (env: Record<string, string>) => settings(renderMainCf(input(env), PATHS));
const file = (env: Record<string, string>, name: string) => renderAll(input(env)).find((f) => f.path === `/srv/rb/postfix/${name}`)?.content ?? '';

test('a list: relayhost in the given order, a verified policy row with SNI and the credentials for every smarthost', () => {
  const env = { ...CREDENTIALS, RELAY_HOST: '[smtp-a.provider.example]:587, [smtp-b.provider.example]:587 smtp.backup.example:2525' };
  assert.equal(main(env).get('relayhost'), '[smtp-a.provider.example]:587, [smtp-b.provider.example]:587, smtp.backup.example:2525');
  assert.equal(main(env).get('smtp_mx_session_limit'), '3', 'a hop answering 4xx after EHLO counts as a session: let every hop have its turn');
  assert.equal(main({ ...env, RELAY_HOST: '[a.example]:587,[b.example]:587' }).has('smtp_mx_session_limit'), false, "two hops fit Postfix's default of 2");
  const policy = file(env, 'relay_tls_policy');
  assert.match(policy, /^\[smtp-a\.provider\.example\]:587 secure match=smtp-a\.provider\.example servername=smtp-a\.provider\.example$/m);
  assert.match(policy, /^\[smtp-b\.provider\.example\]:587 secure match=smtp-b\.provider\.example servername=smtp-b\.provider\.example$/m);
  assert.match(policy, /^smtp\.backup\.example:2525 secure match=smtp\.backup\.example servername=smtp\.backup\.example$/m);
  const passwords = file(env, 'relay_password');
  for (const hop of ['[smtp-a.provider.example]:587', '[smtp-b.provider.example]:587', 'smtp.backup.example:2525']) assert.ok(passwords.split('\n').includes(`${hop} u@provider.example:p4ss word`), passwords);
});

test('RELAY_TLS_NAME: one name for every IP-literal smarthost, or one per smarthost in order; another count is refused', () => {
  const one = file({ ...CREDENTIALS, RELAY_HOST: '[192.0.2.7]:587, [192.0.2.8]:587', RELAY_TLS_NAME: 'smtp.provider.example' }, 'relay_tls_policy');
  assert.match(one, /^\[192\.0\.2\.7\]:587 secure match=smtp\.provider\.example servername=smtp\.provider\.example$/m);
  assert.match(one, /^\[192\.0\.2\.8\]:587 secure match=smtp\.provider\.example servername=smtp\.provider\.example$/m);
  const each = file({ ...CREDENTIALS, RELAY_HOST: '[192.0.2.7]:587, [192.0.2.8]:587', RELAY_TLS_NAME: 'a.provider.example, b.provider.example' }, 'relay_tls_policy');
  assert.match(each, /^\[192\.0\.2\.7\]:587 secure match=a\.provider\.example servername=a\.provider\.example$/m);
  assert.match(each, /^\[192\.0\.2\.8\]:587 secure match=b\.provider\.example servername=b\.provider\.example$/m);
  const wrong = errors({ ...CREDENTIALS, RELAY_HOST: '[192.0.2.7]:587, [192.0.2.8]:587, [192.0.2.9]:587', RELAY_TLS_NAME: 'a.example, b.example' });
  assert.equal(wrong.length, 1, wrong.join('\n'));
  assert.match(wrong[0]!, /^RELAY_TLS_NAME.*2 names for 3 smarthosts/);
});

test('implicit TLS for a whole list: the relay-smtps transport; a list mixing 465 and STARTTLS is refused naming RELAY_HOST', () => {
  assert.equal(main({ ...CREDENTIALS, RELAY_HOST: '[a.example]:465, smtps:[b.example]:2465' }).get('default_transport'), 'relay-smtps');
  const mixed = errors({ ...CREDENTIALS, RELAY_HOST: '[a.example]:587, [b.example]:465' });
  assert.equal(mixed.length, 1, mixed.join('\n'));
  assert.match(mixed[0]!, /^RELAY_HOST.*mixes implicit TLS .* and STARTTLS.*1 \[a\.example\]:587 STARTTLS, 2 \[b\.example\]:465 implicit TLS.*one mode for all/);
});

test('every smarthost is validated like a single one; duplicates and more than five are refused', () => {
  const bad = errors({ RELAY_HOST: '[a.example]:587, [b.example]:99999' });
  assert.equal(bad.length, 1, bad.join('\n'));
  assert.match(bad[0]!, /^RELAY_HOST.*smarthost 2 \("\[b\.example\]:99999"\).*port must be 1-65535/);
  assert.match(errors({ RELAY_HOST: '[a.example]:587, smtps:[b.example]:587' })[0]!, /^RELAY_HOST.*smarthost 2.*port 587 greets in plaintext/);
  const duplicate = errors({ RELAY_HOST: '[A.example]:587, [b.example]:587, [a.example]:587' });
  assert.match(duplicate[0]!, /^RELAY_HOST.*smarthost 3 \("\[a\.example\]:587"\): the same as smarthost 1/);
  assert.deepEqual(errors({ RELAY_HOST: 'a.example:587, [a.example]:587' }), [], 'with and without MX lookup are different nexthops');
  assert.match(errors({ RELAY_HOST: ['a', 'b', 'c', 'd', 'e', 'f'].map((h) => `[${h}.example]:587`).join(',') })[0]!, /^RELAY_HOST.*6 smarthosts; at most 5/);
  assert.match(errors({ RELAY_HOST: ', ,' }).join('\n') || 'accepted as empty', /accepted as empty/, 'only separators: no smarthost, as when empty');
});

test('a route reaching a listed smarthost in the other TLS mode is refused', () => {
  const found = errors({ ...CREDENTIALS, RELAY_HOST: '[a.example]:2465, [b.example]:587', RELAY_ROUTES: '@example.com=smtps:[b.example]:587' });
  assert.ok(found.some((e) => /^RELAY_ROUTES/.test(e) || /greets in plaintext/.test(e)), found.join('\n'));
  const conflict = errors({ ...CREDENTIALS, RELAY_HOST: '[a.example]:587, [b.example]:2525', RELAY_ROUTES: '@example.com=smtps:[b.example]:2525' });
  assert.equal(conflict.length, 1, conflict.join('\n'));
  assert.match(conflict[0]!, /^RELAY_ROUTES.*\[b\.example\]:2525 with implicit TLS.*RELAY_HOST reaches the same smarthost with STARTTLS/);
});

test("the delivery line's relay= is mapped to the configured smarthost and its position; others are not counted", async () => {
  const { config } = loadConfig({ ...BASE, ...CREDENTIALS, RELAY_HOST: '[127.0.0.1]:2525, [smtp-b.example]:587', RELAY_ROUTES: '@example.com=[route.example]:587' }) as { ok: true; config: Parameters<typeof configuredSmarthosts>[0] };
  const hops = configuredSmarthosts(config);
  assert.deepEqual(hops.map((h) => [h.nexthop, h.position, h.of]), [['[127.0.0.1]:2525', 1, 2], ['[smtp-b.example]:587', 2, 2], ['[route.example]:587', 1, 1]]);
  assert.equal(smarthostOf('127.0.0.1[127.0.0.1]:2525', hops)?.position, 1);
  assert.equal(smarthostOf('smtp-b.example[192.0.2.9]:587', hops)?.position, 2);
  assert.equal(smarthostOf('smtp-b.example[192.0.2.9]:25', hops), undefined, 'another port is another smarthost');
  const registry = new Registry();
  const events: Array<Record<string, unknown>> = [];
  const log = { warn: (fields: Record<string, unknown>, msg: string) => events.push({ ...fields, msg }) } as unknown as import('pino').Logger;
  const deliveries = new SmarthostDeliveries(registry, hops, log);
  deliveries.observe({ level: 'info', program: 'postfix/smtp', msg: '4ABC12: to=<x@y.example>, relay=smtp-b.example[192.0.2.9]:587, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)' });
  deliveries.observe({ level: 'info', program: 'postfix/smtp', msg: '4ABC13: to=<x@y.example>, relay=127.0.0.1[127.0.0.1]:2525, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)' });
  deliveries.observe({ level: 'info', program: 'postfix/smtp', msg: '4ABC14: to=<x@y.example>, relay=other.example[192.0.2.1]:25, delay=1, dsn=2.0.0, status=sent (250 ok)' });
  deliveries.observe({ level: 'info', program: 'postfix/lmtp', msg: '4ABC15: to=<a@example.com>, relay=127.0.0.1[127.0.0.1]:2525, dsn=2.0.0, status=sent (250 ok)' });
  const text = await registry.metrics();
  assert.match(text, /^relaybox_smarthost_deliveries_total\{smarthost="\[smtp-b\.example\]:587",position="2",status="sent"\} 1$/m);
  assert.match(text, /^relaybox_smarthost_deliveries_total\{smarthost="\[127\.0\.0\.1\]:2525",position="1",status="sent"\} 1$/m, 'the lmtp line is not a smarthost delivery');
  assert.doesNotMatch(text, /other\.example|y\.example/, 'no other hosts, no addresses as labels');
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.equal(events[0]!.event, 'smarthost_failover');
  assert.match(String(events[0]!.msg), /^4ABC12: delivered through smarthost 2 of 2 \(\[smtp-b\.example\]:587\)/);
});

test('a route with a failover list: its own transport entry with the list (Postfix reads lists from transports), a row per hop', () => {
  const env = { ...CREDENTIALS, RELAY_HOST: '[smtp.provider.example]:587', RELAY_ROUTES: '@b.example=[r1.example]:587, [r2.example]:587 @example.org=[r3.example]:587', RELAY_ROUTE_CREDENTIALS: '@b.example userB:pass B' };
  const conf = main(env);
  assert.equal(conf.get('sender_dependent_default_transport_maps'), 'texthash:/srv/rb/postfix/sender_transport');
  const transports = file(env, 'sender_transport');
  assert.match(transports, /^@b\.example smtp:\[r1\.example\]:587, \[r2\.example\]:587$/m);
  assert.match(transports, /^@example\.org smtp:\[r3\.example\]:587$/m);
  assert.match(file(env, 'sender_relay'), /^@b\.example \[r1\.example\]:587, \[r2\.example\]:587$/m);
  const policy = file(env, 'relay_tls_policy');
  for (const host of ['r1', 'r2']) assert.match(policy, new RegExp(`^\\[${host}\\.example\\]:587 secure match=${host}\\.example servername=${host}\\.example$`, 'm'));
  assert.match(main({ ...env, RELAY_ROUTES: '@b.example=smtps:[r1.example]:2465,[r2.example]:465' }).get('sender_dependent_default_transport_maps') ?? '', /sender_transport/);
  assert.match(file({ ...env, RELAY_ROUTES: '@b.example=smtps:[r1.example]:2465,[r2.example]:465' }, 'sender_transport'), /^@b\.example relay-smtps:\[r1\.example\]:2465, \[r2\.example\]:465$/m);
  assert.equal(main({ ...env, RELAY_ROUTES: '@b.example=[r1.example]:587' }).has('sender_dependent_default_transport_maps'), false, 'single-hop STARTTLS routes as before');
  const mixed = errors({ ...env, RELAY_ROUTES: '@b.example=[r1.example]:587,[r2.example]:465' });
  assert.equal(mixed.length, 1, mixed.join('\n'));
  assert.match(mixed[0]!, /^RELAY_ROUTES.*@b\.example: mixes implicit TLS/);
  assert.match(errors({ ...env, RELAY_ROUTES: '@b.example=[r1.example]:587,[r1.example]:587' })[0]!, /^RELAY_ROUTES.*@b\.example: smarthost 2.*the same as smarthost 1/);
});

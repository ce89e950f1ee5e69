// Rendering of the outbound settings: TLS per smarthost (verified by default with credentials),
// CA path and file, relay routes with their credentials, the sending-limits policy service, the
// postmaster, and Dovecot's auth policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.ts';
import { renderAll } from '../../src/render/index.ts';
import { renderMainCf, renderMasterCf } from '../../src/render/postfix.ts';
import { renderDovecotConf } from '../../src/render/dovecot.ts';
import { statePaths } from '../../src/render/paths.ts';

/** master.cf's entry for a service: its line and its -o options. */
function masterEntry(text: string, name: string): string | undefined {
  const start = text.split('\n').findIndex((l) => l.startsWith(`${name} `));
  if (start < 0) return undefined;
  const rest = text.split('\n').slice(start);
  const end = rest.findIndex((l, i) => i > 0 && !l.startsWith(' '));
  return rest.slice(0, end < 0 ? undefined : end).join('\n');
}
import type { RenderInput } from '../../src/render/types.ts';

const PATHS = statePaths('/srv/rb');

function input(env: Record<string, string> = {}, extra: Partial<RenderInput> = {}): RenderInput {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com, example.org', MAIL_USERS: 'alice@example.com:{PLAIN}a bob@b.example:{PLAIN}b', STATE_DIR: '/srv/rb', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return { config: result.config, users: result.config.users, tls: { certFile: '/srv/rb/tls/cert.pem', keyFile: '/srv/rb/tls/key.pem' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [], ...extra } as RenderInput;
}

const settings = (text: string) => new Map(text.split('\n').filter((l) => /^\w+ = ?/.test(l)).map((l) => [l.slice(0, l.indexOf(' =')), l.slice(l.indexOf('=') + 1).trim()]));
const main = (env: Record<string, string> = {}) => settings(renderMainCf(input(env), PATHS));
const file = (env: Record<string, string>, name: string) => renderAll(input(env)).find((f) => f.path === `/srv/rb/postfix/${name}`);
const CREDENTIALS = { RELAY_HOST: '[smtp.provider.example]:587', RELAY_USERNAME: 'u@provider.example', RELAY_PASSWORD: 'pass with  inner spaces' };

test('with credentials the smarthost is verified: secure, its name matched, the system CAs by hashed directory', () => {
  const conf = main(CREDENTIALS);
  assert.equal(conf.get('smtp_tls_security_level'), 'secure');
  assert.equal(conf.get('smtp_tls_policy_maps'), 'texthash:/srv/rb/postfix/relay_tls_policy');
  assert.equal(conf.get('smtp_tls_CApath'), '/etc/ssl/certs', 'inside the chroot: the supervisor copies the CA links there');
  assert.equal(conf.has('smtp_tls_CAfile'), false, 'never the whole bundle as a CAfile');
  assert.match(file(CREDENTIALS, 'relay_tls_policy')!.content, /^\[smtp\.provider\.example\]:587 secure match=smtp\.provider\.example servername=smtp\.provider\.example$/m);
  assert.match(file(CREDENTIALS, 'relay_password')!.content, /^\[smtp\.provider\.example\]:587 u@provider\.example:pass with {2}inner spaces$/m);
});

test('RELAY_TLS_NAME and RELAY_TLS_CA_FILE: an IP-literal smarthost checked against a name, a private CA', () => {
  const env = { ...CREDENTIALS, RELAY_HOST: '[127.0.0.1]:2525', RELAY_TLS_NAME: 'Smarthost.Test', RELAY_TLS_CA_FILE: new URL('./fixtures/ca.pem', import.meta.url).pathname };
  const conf = main(env);
  assert.equal(conf.get('smtp_tls_CAfile'), env.RELAY_TLS_CA_FILE);
  assert.equal(conf.get('smtp_tls_CApath'), '/etc/ssl/certs');
  assert.match(file(env, 'relay_tls_policy')!.content, /^\[127\.0\.0\.1\]:2525 secure match=smarthost\.test servername=smarthost\.test$/m);
});

test('RELAY_TLS=encrypt is the only weaker level with credentials; without credentials the default is may', () => {
  assert.equal(main({ ...CREDENTIALS, RELAY_TLS: 'encrypt' }).get('smtp_tls_security_level'), 'encrypt');
  assert.match(file({ ...CREDENTIALS, RELAY_TLS: 'encrypt' }, 'relay_tls_policy')!.content, /^\[smtp\.provider\.example\]:587 encrypt servername=smtp\.provider\.example$/m);
  assert.equal(main({ ...CREDENTIALS, RELAY_TLS: 'encrypt' }).has('smtp_tls_CApath'), false);
  const plain = main({ RELAY_HOST: '[smtp.provider.example]:25' });
  assert.equal(plain.get('smtp_tls_security_level'), 'may');
  assert.equal(plain.has('smtp_sasl_auth_enable'), false);
  assert.equal(main({ RELAY_HOST: '[smtp.provider.example]:25', RELAY_TLS: 'verify' }).get('smtp_tls_security_level'), 'secure');
  assert.equal(main({ RESOLVER: 'system' }).get('smtp_tls_security_level'), 'may', 'no smarthost and no validating resolver: MX delivery, opportunistic TLS');
  assert.equal(main({ RESOLVER: 'system', MTA_STS: 'off' }).has('smtp_tls_policy_maps'), false);
});

test('relay routes: sender-dependent smarthost and credentials, a TLS row per nexthop', () => {
  const env = {
    ...CREDENTIALS,
    RELAY_ROUTES: '@b.example=[smtp.second.example]:587 boss@example.org=[smtp.second.example]:587 @example.org=[smtp.third.example]:2525',
    RELAY_ROUTE_CREDENTIALS: '@b.example userB:pass B\nboss@example.org boss:bosspass',
  };
  const conf = main(env);
  assert.equal(conf.get('sender_dependent_relayhost_maps'), 'texthash:/srv/rb/postfix/sender_relay');
  assert.equal(conf.get('smtp_sender_dependent_authentication'), 'yes');
  assert.equal(conf.get('relayhost'), '[smtp.provider.example]:587', 'other senders, bounces and notices');
  const routes = file(env, 'sender_relay')!.content;
  assert.match(routes, /^@b\.example \[smtp\.second\.example\]:587$/m);
  assert.match(routes, /^boss@example\.org \[smtp\.second\.example\]:587$/m);
  const passwords = file(env, 'relay_password')!;
  assert.equal(passwords.mode, 0o600);
  assert.match(passwords.content, /^@b\.example userB:pass B$/m);
  assert.match(passwords.content, /^boss@example\.org boss:bosspass$/m);
  assert.match(passwords.content, /^\[smtp\.provider\.example\]:587 u@provider\.example:/m);
  const policy = file(env, 'relay_tls_policy')!.content;
  assert.match(policy, /^\[smtp\.second\.example\]:587 secure match=smtp\.second\.example servername=smtp\.second\.example$/m, 'a route with credentials is verified');
  assert.match(policy, /^\[smtp\.third\.example\]:2525 may servername=smtp\.third\.example$/m, 'a route without credentials: may');
  assert.equal(policy.match(/smtp\.second\.example\]:587/g)?.length, 1, 'one row per nexthop');
  assert.ok(!renderMainCf(input(env), PATHS).includes('bosspass'));
});

test('sending limits: the policy service at DATA on the submission ports only; a temporary error when it is down', () => {
  const master = renderMasterCf(input({ BIND_ADDRESS: '127.0.0.1', PORT_SMTP: '2525', PORT_SUBMISSION: '2587' }));
  const blocks = master.split('\n127.0.0.1:');
  assert.ok(blocks.find((b) => b.startsWith('2587'))!.includes('smtpd_data_restrictions=reject_unauth_pipelining,check_policy_service,unix:private/relaybox-policy'));
  assert.ok(blocks.find((b) => b.startsWith('465'))!.includes('check_policy_service,unix:private/relaybox-policy'));
  assert.ok(!blocks.find((b) => b.startsWith('2525'))!.includes('relaybox-policy'), 'port 25 has no users to count');
  const conf = main();
  assert.match(conf.get('smtpd_policy_service_default_action') ?? '', /^451 4\.3\.5 /);
  assert.equal(conf.get('smtpd_policy_service_timeout'), '3s');
  assert.equal(PATHS.policySocket, '/srv/rb/queue/private/relaybox-policy');
  const off = renderMasterCf(input({ SEND_LIMIT_MESSAGES: '0', SEND_LIMIT_RECIPIENTS: '0' }));
  assert.ok(!off.includes('relaybox-policy'), 'no limits, no policy service');
  assert.ok(renderMasterCf(input({ SEND_LIMIT_MESSAGES: '0', SEND_LIMIT_RECIPIENTS: '0', SEND_LIMITS: 'alice@example.com:5/h' })).includes('relaybox-policy'));
});

test('postmaster@ every local domain and MAIL_HOSTNAME leads to POSTMASTER_ADDRESS, with the notices', () => {
  const aliases = (env: Record<string, string>) => file(env, 'aliases')!.content;
  const outside = aliases({ POSTMASTER_ADDRESS: 'boss@outside.example' });
  for (const domain of ['example.com', 'example.org', 'mail.example.com']) assert.match(outside, new RegExp(`^postmaster@${domain.replaceAll('.', '\\.')} boss@outside\\.example$`, 'm'));
  const conf = main({ POSTMASTER_ADDRESS: 'boss@outside.example' });
  for (const kind of ['bounce', '2bounce', 'delay', 'error']) assert.equal(conf.get(`${kind}_notice_recipient`), 'boss@outside.example');
  assert.equal(conf.get('notify_classes'), 'resource, software, 2bounce');
  assert.match(aliases({}), /^postmaster@example\.com alice@example\.com$/m, 'default: the first user');
  const own = aliases({ MAIL_ALIASES: 'postmaster@example.org:bob@b.example' });
  assert.match(own, /^postmaster@example\.org bob@b\.example$/m);
  assert.equal(own.match(/^postmaster@example\.org /gm)?.length, 1, 'an alias of the admin\'s own wins');
  assert.doesNotMatch(aliases({ MAIL_USERS: 'postmaster@example.com:{PLAIN}p alice@example.com:{PLAIN}a' }), /^postmaster@example\.com /m, 'a real postmaster mailbox is left alone');
});

test("Dovecot's auth policy: only with the endpoint, its API key in a file of its own (0600)", () => {
  const endpoint = { url: 'http://127.0.0.1:40000/policy', apiKey: 'k'.repeat(48), nonce: 'n'.repeat(32) };
  const files = renderAll(input({}, { authPolicy: endpoint }));
  const conf = files.find((f) => f.path === PATHS.dovecotConf)!.content;
  assert.match(conf, /^!include \/srv\/rb\/dovecot\/auth-policy\.conf$/m);
  assert.ok(!conf.includes(endpoint.apiKey));
  const policy = files.find((f) => f.path === PATHS.dovecotAuthPolicy)!;
  assert.equal(policy.mode, 0o600);
  assert.match(policy.content, /^auth_policy_server_url = http:\/\/127\.0\.0\.1:40000\/policy$/m);
  assert.match(policy.content, new RegExp(`^auth_policy_server_api_header = X-API-Key:${endpoint.apiKey}$`, 'm'));
  assert.match(policy.content, /^auth_policy_request_attributes = login=%\{requested_username\} remote=%\{rip\} protocol=%s$/m);
  assert.match(policy.content, /^auth_policy_check_after_auth = no$/m);
  assert.doesNotMatch(renderDovecotConf(input(), PATHS), /auth-policy/);
});

test('a smarthost on 465: the relay-smtps transport (wrappermode), verified by the same policy row, SNI from the row', () => {
  const env = { ...CREDENTIALS, RELAY_HOST: '[smtp.provider.example]:465' };
  const conf = main(env);
  assert.equal(conf.get('relayhost'), '[smtp.provider.example]:465');
  assert.equal(conf.get('default_transport'), 'relay-smtps', 'bounces and notices too');
  assert.equal(conf.get('smtp_tls_security_level'), 'secure');
  assert.equal(conf.has('smtp_tls_servername'), false, 'never hostname: Postfix would send an IP literal as SNI');
  const master = renderMasterCf(input(env), PATHS);
  const entry = masterEntry(master, 'relay-smtps');
  assert.ok(entry, master);
  assert.match(entry, /^relay-smtps {2}unix .* smtp$/m);
  assert.match(entry, /-o smtp_tls_wrappermode=yes/);
  assert.match(entry, /-o smtp_tls_security_level=encrypt/);
  assert.match(file(env, 'relay_tls_policy')!.content, /^\[smtp\.provider\.example\]:465 secure match=smtp\.provider\.example servername=smtp\.provider\.example$/m);
  assert.equal(masterEntry(renderMasterCf(input(CREDENTIALS), PATHS), 'relay-smtps'), undefined, 'no implicit-TLS transport when no smarthost needs one');
  assert.equal(main(CREDENTIALS).has('default_transport'), false);
});

test('implicit TLS without credentials is at least encrypt; smtps: on another port; SNI only for names, never IP addresses', () => {
  assert.equal(main({ RELAY_HOST: 'smtps:[smtp.provider.example]:2465' }).get('smtp_tls_security_level'), 'encrypt');
  assert.match(file({ RELAY_HOST: 'smtps:[smtp.provider.example]:2465' }, 'relay_tls_policy')!.content, /^\[smtp\.provider\.example\]:2465 encrypt servername=smtp\.provider\.example$/m);
  assert.match(file({ RELAY_HOST: '[smtp.provider.example]:25' }, 'relay_tls_policy')!.content, /^\[smtp\.provider\.example\]:25 may servername=smtp\.provider\.example$/m);
  assert.match(file({ ...CREDENTIALS, RELAY_HOST: '[192.0.2.7]:465' }, 'relay_tls_policy')!.content, /^\[192\.0\.2\.7\]:465 secure match=192\.0\.2\.7$/m);
  assert.match(file({ ...CREDENTIALS, RELAY_HOST: '[192.0.2.7]:465', RELAY_TLS_NAME: 'smtp.provider.example' }, 'relay_tls_policy')!.content, /^\[192\.0\.2\.7\]:465 secure match=smtp\.provider\.example servername=smtp\.provider\.example$/m);
});

test('routes in either TLS mode: each route as transport:nexthop, so a 465 route can sit beside a STARTTLS default', () => {
  const env = { ...CREDENTIALS, RELAY_ROUTES: '@b.example=[smtp.second.example]:465 @example.org=[smtp.third.example]:587', RELAY_ROUTE_CREDENTIALS: '@b.example userB:pass B' };
  const conf = main(env);
  assert.equal(conf.has('default_transport'), false, 'RELAY_HOST stays on STARTTLS');
  assert.equal(conf.get('sender_dependent_default_transport_maps'), 'texthash:/srv/rb/postfix/sender_transport');
  const transports = file(env, 'sender_transport')!.content;
  assert.match(transports, /^@b\.example relay-smtps:\[smtp\.second\.example\]:465$/m);
  assert.match(transports, /^@example\.org smtp:\[smtp\.third\.example\]:587$/m);
  assert.ok(masterEntry(renderMasterCf(input(env), PATHS), 'relay-smtps'));
  const reverse = { ...CREDENTIALS, RELAY_HOST: '[smtp.provider.example]:465', RELAY_ROUTES: '@b.example=[smtp.second.example]:587' };
  assert.equal(main(reverse).get('default_transport'), 'relay-smtps');
  assert.match(file(reverse, 'sender_transport')!.content, /^@b\.example smtp:\[smtp\.second\.example\]:587$/m, 'a STARTTLS route under an implicit-TLS default');
  assert.equal(main({ ...CREDENTIALS, RELAY_ROUTES: '@b.example=[smtp.second.example]:587' }).has('sender_dependent_default_transport_maps'), false);
});

test('main.cf lines: a setting two concerns need is written once; two different values are refused', async () => {
  const { lines } = await import('../../src/render/postfix/format.ts');
  assert.equal(lines([['virtual_alias_domains', 'mail.example.com'], false, ['a', 1], ['virtual_alias_domains', 'mail.example.com']]), 'virtual_alias_domains = mail.example.com\na = 1');
  assert.throws(() => lines([['relayhost', '[a.example]:587'], ['relayhost', '[b.example]:587']]), /relayhost rendered twice/);
});

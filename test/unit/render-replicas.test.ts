// What the renderers make of each ROLE: a relay delivers the local domains over LMTP with the
// certificate pinned and takes handoffs on a listener of its own; a stopping relay listens no more
// and routes everything to one peer; the mailbox replica has Dovecot only, LMTP over TCP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig } from '../../src/config/load.ts';
import { renderAll } from '../../src/render/index.ts';
import { renderDovecotConf } from '../../src/render/dovecot.ts';
import { statePaths } from '../../src/render/paths.ts';
import { renderMainCf, renderMasterCf } from '../../src/render/postfix.ts';
import { publicKeyFingerprint } from '../../src/render/tls-policy.ts';
import type { RenderInput } from '../../src/render/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'relaybox-render-replicas-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=mail.example.com', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`], { stdio: 'ignore' });
writeFileSync(`${dir}/users`, 'alice@example.com:{SHA512-CRYPT}$6$abcdefgh$0123456789\n');
mkdirSync(`${dir}/dkim`);
writeFileSync(`${dir}/dkim/example.com.relaybox.key`, execFileSync('openssl', ['genrsa', '1024'], { stdio: ['ignore', 'pipe', 'ignore'] }));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const PIN = publicKeyFingerprint(readFileSync(`${dir}/cert.pem`, 'utf8'));
const paths = statePaths('/srv/rb');

const common = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', STATE_DIR: '/srv/rb', TLS_CERT_FILE: `${dir}/cert.pem`, TLS_KEY_FILE: `${dir}/key.pem`, MAIL_USERS_FILE: `${dir}/users` };
const RELAY = { ...common, ROLE: 'relay', DKIM_KEY_DIR: `${dir}/dkim`, MAILBOX_LMTP_HOST: 'relaybox-mailbox-lmtp:24', REDIS_URL: 'redis://redis:6379', HANDOFF_PEERS: 'relaybox-relay-peers', HANDOFF_PASSWORD: 'handoff-password-0123456789', RELAY_HOST: '[smtp.provider.example]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD: 'upstream-password', RELAY_ROUTES: '@example.com=[smtp.second.example]:587' };
const MAILBOX = { ...common, ROLE: 'mailbox', MAILBOX_QUOTA: '1G' };

function input(env: Record<string, string>, extra: Partial<RenderInput> = {}): RenderInput {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  const { config } = result;
  return { config, users: config.users, tls: { certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem`, publicKey: PIN }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [], handoffHash: '{SHA512-CRYPT}$6$salt$handoffhash', ...extra };
}

function settings(text: string): Map<string, string> {
  return new Map(text.split('\n').filter((l) => /^\w+ = ?/.test(l)).map((l) => [l.slice(0, l.indexOf(' =')), l.slice(l.indexOf('=') + 1).trim()]));
}

const service = (master: string, port: number) => new RegExp(`^${port} +inet .*smtpd\\n((?:  -o .*\\n)*)`, 'm').exec(master)?.[1] ?? '';

test('relay: the local domains go to the mailbox replica over LMTP, STARTTLS required, its certificate pinned', () => {
  const main = settings(renderMainCf(input(RELAY), paths));
  assert.equal(main.get('virtual_transport'), 'lmtp:inet:relaybox-mailbox-lmtp:24');
  assert.equal(main.get('lmtp_tls_security_level'), 'fingerprint');
  assert.equal(main.get('lmtp_tls_fingerprint_digest'), 'sha256');
  assert.equal(main.get('lmtp_tls_fingerprint_cert_match'), PIN);
  assert.match(PIN, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(main.get('relayhost'), '[smtp.provider.example]:587', 'the upstream as usual');
  const ip = settings(renderMainCf(input({ ...RELAY, MAILBOX_LMTP_HOST: '10.1.2.3:2424' }), paths));
  assert.equal(ip.get('virtual_transport'), 'lmtp:inet:[10.1.2.3]:2424');
});

test('relay: the handoff listener takes the handoff account only, with STARTTLS, no milter and no limits; 587 and 465 refuse that account', () => {
  const master = renderMasterCf(input(RELAY), paths);
  const handoff = service(master, 10025);
  for (const option of ['syslog_name=postfix/handoff', 'smtpd_tls_security_level=encrypt', 'smtpd_sasl_auth_enable=yes', `smtpd_relay_restrictions=check_sasl_access,texthash:${paths.handoffLogins},reject`, 'smtpd_milters=', 'smtpd_recipient_restrictions=']) {
    assert.ok(handoff.includes(`-o ${option}\n`), `${option} missing:\n${handoff}`);
  }
  assert.doesNotMatch(handoff, /relaybox-policy/, 'no sending limits on the handoff');
  for (const port of [587, 465]) assert.match(service(master, port), new RegExp(`smtpd_relay_restrictions=check_sasl_access,texthash:${paths.handoffRefused},permit_sasl_authenticated,reject`));
  const files = renderAll(input(RELAY));
  assert.match(files.find((f) => f.path === paths.handoffLogins)!.content, /^relaybox-handoff OK$/m);
  assert.match(files.find((f) => f.path === paths.handoffRefused)!.content, /^relaybox-handoff REJECT /m);
  assert.match(files.find((f) => f.path === paths.passwdFile)!.content, /^relaybox-handoff:\{SHA512-CRYPT\}\$6\$salt\$handoffhash::::::$/m);
  assert.ok(!files.some((f) => f.content.includes('handoff-password-0123456789')), 'no handoff password while serving');
});

test('relay, draining: no listener at all; handing off: everything to the one peer, pinned, as the handoff account, no upstream credential', () => {
  const draining = renderMasterCf(input(RELAY, { drain: {} }), paths);
  assert.doesNotMatch(draining, / inet /, 'every SMTP listener closed');
  assert.match(draining, /^qmgr /m, 'the queue manager stays');
  assert.equal(settings(renderMainCf(input(RELAY, { drain: {} }), paths)).get('smtp_connect_timeout'), '5s', 'an unreachable upstream cannot eat the drain time');
  assert.equal(settings(renderMainCf(input(RELAY), paths)).has('smtp_connect_timeout'), false);

  const peer = { host: '10.0.0.8', port: 10025 };
  const handing = input(RELAY, { drain: { handoffTo: peer } });
  const main = settings(renderMainCf(handing, paths));
  assert.equal(main.get('relayhost'), '[10.0.0.8]:10025');
  assert.equal(main.get('transport_maps'), `texthash:${paths.handoffTransport}`);
  assert.equal(main.get('smtp_tls_security_level'), 'fingerprint');
  assert.equal(main.get('smtp_tls_fingerprint_cert_match'), PIN);
  assert.equal(main.get('smtp_sasl_password_maps'), `texthash:${paths.handoffPasswordMap}`);
  for (const gone of ['sender_dependent_relayhost_maps', 'smtp_sender_dependent_authentication', 'smtp_tls_policy_maps']) assert.equal(main.has(gone), false, `${gone} would send mail or a password elsewhere`);
  const files = renderAll(handing);
  assert.equal(files.find((f) => f.path === paths.handoffTransport)!.content.split('\n').at(-2), '* smtp:[10.0.0.8]:10025', 'the local domains too');
  const password = files.find((f) => f.path === paths.handoffPasswordMap)!;
  assert.equal(password.mode, 0o600);
  assert.match(password.content, /^\[10\.0\.0\.8\]:10025 relaybox-handoff:handoff-password-0123456789$/m);
  assert.doesNotMatch(renderMasterCf(handing, paths), / inet /);
});

test('relay: Dovecot authenticates only (no IMAP, no LMTP); no Maildir settings needed', () => {
  const conf = renderDovecotConf(input(RELAY), paths);
  assert.match(conf, /^protocols = none$/m);
  assert.doesNotMatch(conf, /service (imap-login|lmtp) \{/);
  assert.match(conf, new RegExp(`unix_listener ${paths.authSocket} \\{`));
});

test('mailbox: Dovecot with IMAP and LMTP over TCP, the quota enforced at LMTP; no Postfix, no signer, no filter', () => {
  const rendered = input(MAILBOX);
  const conf = renderDovecotConf(rendered, paths);
  assert.match(conf, /^protocols = imap lmtp$/m);
  assert.match(conf, /service lmtp \{\n  inet_listener lmtp \{\n    port = 24\n  \}\n  unix_listener lmtp \{\n    mode = 0600\n    user = vmail\n  \}\n\}/);
  assert.doesNotMatch(conf, /dovecot-lmtp/, 'no unix socket for a Postfix that is not there');
  assert.match(conf, /lmtp_rcpt_check_quota = yes/);
  assert.doesNotMatch(conf, /service quota-status/);
  const files = renderAll(rendered);
  assert.ok(!files.some((f) => f.path.startsWith(paths.postfix) || f.path.startsWith(paths.opendkim) || f.path.startsWith(paths.rspamd)), files.map((f) => f.path).join('\n'));
});

test('ROLE=all renders as before: LMTP over the socket, no handoff anywhere', () => {
  const single = input({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', STATE_DIR: '/srv/rb', MAIL_USERS: 'alice@example.com:{PLAIN}a' });
  const main = settings(renderMainCf(single, paths));
  assert.equal(main.get('virtual_transport'), 'lmtp:unix:private/dovecot-lmtp');
  assert.equal(main.has('lmtp_tls_security_level'), false);
  const master = renderMasterCf(single, paths);
  assert.doesNotMatch(master, /handoff/);
  assert.match(master, /smtpd_relay_restrictions=permit_sasl_authenticated,reject/);
  assert.match(renderDovecotConf(single, paths), /^protocols = imap lmtp$/m);
});

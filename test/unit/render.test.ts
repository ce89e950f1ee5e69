import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.ts';
import { renderAll } from '../../src/render/index.ts';
import { renderMainCf, renderMasterCf } from '../../src/render/postfix.ts';
import { renderDovecotConf } from '../../src/render/dovecot.ts';
import { statePaths } from '../../src/render/paths.ts';
import type { RenderInput } from '../../src/render/types.ts';

function input(env: Record<string, string> = {}): RenderInput {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a relay@other.example:{PLAIN}b', STATE_DIR: '/srv/rb', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return { config: result.config, users: result.config.users, tls: { certFile: '/srv/rb/tls/cert.pem', keyFile: '/srv/rb/tls/key.pem' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [] };
}

function settings(text: string): Map<string, string> {
  return new Map(text.split('\n').filter((l) => /^\w+ = ?/.test(l)).map((l) => [l.slice(0, l.indexOf(' =')), l.slice(l.indexOf('=') + 1).trim()]));
}

test('main.cf: no open relay, SASL through Dovecot, smuggling and TLS policy', () => {
  const main = settings(renderMainCf(input(), statePaths('/srv/rb')));
  assert.equal(main.get('mynetworks'), '');
  assert.equal(main.get('smtpd_relay_restrictions'), 'reject_unauth_destination');
  assert.equal(main.get('smtpd_sasl_auth_enable'), 'no');
  assert.equal(main.get('smtpd_sasl_type'), 'dovecot');
  assert.equal(main.get('smtpd_sasl_path'), 'private/auth');
  assert.equal(main.get('smtpd_sasl_security_options'), 'noanonymous');
  assert.equal(main.get('smtpd_sasl_authenticated_header'), 'no', 'SUBMITTER_PRIVACY is on by default');
  assert.equal(main.get('smtputf8_enable'), 'no', "Dovecot 2.3's LMTP cannot take SMTPUTF8 mail");
  assert.match(main.get('smtpd_sender_restrictions') ?? '', /check_sender_access texthash:\/srv\/rb\/postfix\/local_senders$/);
  assert.match(main.get('local_header_rewrite_clients') ?? '', /permit_sasl_authenticated/);
  assert.equal(main.has('smtpd_tls_protocols'), false, "port 25 keeps Postfix's opportunistic defaults");
  assert.equal(main.has('smtpd_tls_ciphers'), false);
  assert.equal(main.get('smtpd_tls_mandatory_ciphers'), 'high');
  assert.equal(main.get('smtpd_tls_auth_only'), 'yes');
  assert.equal(main.get('smtpd_forbid_bare_newline'), 'normalize');
  assert.equal(main.get('smtpd_tls_mandatory_protocols'), '>=TLSv1.2');
  assert.equal(main.get('maillog_file'), '/dev/stdout');
  assert.equal(main.get('virtual_mailbox_domains'), 'example.com');
  assert.equal(main.get('queue_directory'), '/srv/rb/queue');
  assert.equal(main.get('relayhost'), '');
  assert.equal(main.get('tls_session_ticket_cipher'), '', 'TLS 1.3 tickets cost ~40 ms per session (BENCHMARKS.md)');
  assert.equal(main.get('tls_config_name'), 'postfix');
  assert.equal(main.has('smtp_tls_CAfile'), false);
});

test('main.cf: TRUSTED_NETWORKS become mynetworks (IPv6 bracketed) and may relay', () => {
  const main = settings(renderMainCf(input({ TRUSTED_NETWORKS: '192.0.2.0/24, 2001:db8::/32' }), statePaths('/srv/rb')));
  assert.equal(main.get('mynetworks'), '192.0.2.0/24, [2001:db8::]/32');
  assert.equal(main.get('smtpd_relay_restrictions'), 'permit_mynetworks, reject_unauth_destination');
});

test('main.cf: relay credentials require TLS to the upstream and use a 0600 map', () => {
  const rendered = input({ RELAY_HOST: '[smtp.example.net]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD: 'secret' });
  const main = settings(renderMainCf(rendered, statePaths('/srv/rb')));
  assert.equal(main.get('relayhost'), '[smtp.example.net]:587');
  assert.equal(main.get('smtp_tls_security_level'), 'secure', 'credentials: the certificate is verified (RELAY_TLS=verify)');
  assert.equal(main.get('smtp_sasl_auth_enable'), 'yes');
  assert.ok(!renderMainCf(rendered, statePaths('/srv/rb')).includes('secret'));
  const map = renderAll(rendered).find((f) => f.path.endsWith('/relay_password'));
  assert.equal(map?.mode, 0o600);
  assert.match(map?.content ?? '', /^\[smtp\.example\.net\]:587 u:secret$/m);
});

test('master.cf: 587 requires STARTTLS then AUTH, 465 wraps TLS, both permit only authenticated relay', () => {
  const master = renderMasterCf(input({ BIND_ADDRESS: '127.0.0.1', PORT_SUBMISSION: '2587' }));
  const submission = master.split('\n127.0.0.1:').find((block) => block.startsWith('2587'));
  assert.ok(submission, master);
  for (const option of ['smtpd_tls_security_level=encrypt', 'smtpd_sasl_auth_enable=yes', 'smtpd_tls_auth_only=yes', 'smtpd_relay_restrictions=permit_sasl_authenticated,reject', 'reject_sender_login_mismatch']) {
    assert.ok(submission.includes(option), option);
  }
  assert.match(master, /^127\.0\.0\.1:465 .*smtpd\n(  -o .*\n)*  -o smtpd_tls_wrappermode=yes/m);
  assert.match(master, /^postlog +unix-dgram/m);
});

test('master.cf: port 0 disables a listener', () => {
  const master = renderMasterCf(input({ PORT_SMTP: '0' }));
  assert.ok(!/^25 /m.test(master));
  assert.ok(/^587 /m.test(master));
});

test('dovecot.conf: auth socket for Postfix, no plaintext auth, TLS 1.2+, logs to stderr', () => {
  const conf = renderDovecotConf(input(), statePaths('/srv/rb'));
  assert.match(conf, /unix_listener \/srv\/rb\/queue\/private\/auth \{\n\s+mode = 0660\n\s+user = postfix\n\s+group = postfix/);
  assert.match(conf, /^disable_plaintext_auth = yes$/m);
  assert.match(conf, /^auth_mechanisms = plain login$/m);
  assert.match(conf, /^auth_failure_delay = /m);
  assert.match(conf, /^ssl_min_protocol = TLSv1\.2$/m);
  assert.match(conf, /^log_path = \/dev\/stderr$/m);
});

test('users become the passwd-file (0640, group dovecot), the login map and the mailbox map', () => {
  const files = renderAll(input());
  const passwd = files.find((f) => f.path.endsWith('/dovecot/passwd'))!;
  assert.equal(passwd.mode, 0o640);
  assert.equal(passwd.group, 'dovecot');
  assert.match(passwd.content, /^alice@example\.com:\{PLAIN\}a::::::$/m);
  const login = files.find((f) => f.path.endsWith('/sender_login'))!;
  assert.match(login.content, /^alice@example\.com alice@example\.com$/m);
  const mailboxes = files.find((f) => f.path.endsWith('/mailboxes'))!;
  assert.match(mailboxes.content, /^alice@example\.com OK$/m);
  assert.ok(!mailboxes.content.includes('relay@other.example'), 'only local-domain users have mailboxes');
});

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

test('rendering is pure: the output depends on the input alone (not on earlier calls, the environment, the working directory or the clock) and the input is left unchanged', (t) => {
  const a = deepFreeze(input()); // a renderer that writes to its input throws here (ES modules are strict)
  const b = input({ MAIL_HOSTNAME: 'mx.other.example', MAIL_DOMAINS: 'other.example', MAIL_USERS: 'bob@other.example:{PLAIN}c', MAILBOX_QUOTA: '1G', RELAY_HOST: '[192.0.2.7]:2525' });
  const first = renderAll(a);
  assert.notDeepEqual(renderAll(b), first, 'another input renders differently');
  const saved = { env: { ...process.env }, cwd: process.cwd() };
  try {
    // What an impure renderer might read instead of its input: the environment, the cwd, the date.
    Object.assign(process.env, { MAIL_HOSTNAME: 'mx.other.example', MAIL_DOMAINS: 'other.example', STATE_DIR: '/elsewhere', TZ: 'Pacific/Kiritimati' });
    process.chdir('/tmp');
    t.mock.timers.enable({ apis: ['Date'], now: Date.UTC(2041, 6, 15, 12) });
    assert.deepEqual(renderAll(a), first);
  } finally {
    t.mock.timers.reset();
    process.chdir(saved.cwd);
    for (const key of Object.keys(process.env)) if (!(key in saved.env)) delete process.env[key];
    Object.assign(process.env, saved.env);
  }
  assert.deepEqual(renderAll(a), first);
});

test('aliases: virtual_alias_maps, catch-all keeps real users, senders may use aliases pointing to them', () => {
  const files = renderAll(input({ MAIL_ALIASES: 'team@example.com:alice@example.com,partner@outside.example @example.com:alice@example.com' }));
  const aliases = files.find((f) => f.path.endsWith('/postfix/aliases'))!.content;
  assert.match(aliases, /^team@example\.com alice@example\.com,partner@outside\.example$/m);
  assert.match(aliases, /^@example\.com alice@example\.com$/m);
  assert.match(aliases, /^alice@example\.com alice@example\.com$/m, 'a catch-all must not swallow a real user');
  const logins = files.find((f) => f.path.endsWith('/sender_login'))!.content;
  assert.match(logins, /^team@example\.com alice@example\.com$/m);
  assert.doesNotMatch(logins, /^@example\.com/m, 'a catch-all gives no right to send as the whole domain');
});

test('MAILBOX_QUOTA: Dovecot quota with quota-status, and Postfix asks it at RCPT time', () => {
  const rendered = input({ MAILBOX_QUOTA: '2g' });
  const conf = renderDovecotConf(rendered, statePaths('/srv/rb'));
  assert.match(conf, /quota_rule = \*:storage=2G/);
  assert.match(conf, /quota_status_overquota = "552 5\.2\.2 Mailbox is full"/);
  assert.match(conf, /unix_listener \/srv\/rb\/queue\/private\/quota-status/);
  assert.match(renderMainCf(rendered, statePaths('/srv/rb')), /^smtpd_recipient_restrictions = .*check_policy_service unix:private\/quota-status$/m);
  assert.match(renderMasterCf(rendered), /check_policy_service,unix:private\/quota-status/);
  assert.doesNotMatch(renderDovecotConf(input(), statePaths('/srv/rb')), /quota/);
});

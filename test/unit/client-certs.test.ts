// Client certificates (CLIENT_CA_FILE): the settings refused with the variable named, what 587 and
// 465 render (and what nothing else does), and the relay verdict for every kind of session.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load.ts';
import { renderAll } from '../../src/render/index.ts';
import type { RenderInput } from '../../src/render/types.ts';
import { certificateRules, judgeRelay, sendingAccount } from '../../src/abuse/client-certs.ts';
import { TestCa } from '../helpers/test-ca.ts';

const ca = new TestCa('unit client CA');
const leaf = ca.client('alice@example.com');
const dir = mkdtempSync('/tmp/rb-ccert-unit-');
const FP = 'AB'.repeat(32);
after(() => {
  ca.remove();
  rmSync(dir, { recursive: true, force: true });
});
const BASE = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a bob@example.com:{PLAIN}b', STATE_DIR: '/srv/rb' };

function load(env: Record<string, string>) {
  return loadConfig({ ...BASE, ...env });
}

function input(env: Record<string, string> = {}): RenderInput {
  const result = load(env);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return { config: result.config, users: result.config.users, tls: { certFile: '/c', keyFile: '/k' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [] };
}

const file = (files: ReturnType<typeof renderAll>, suffix: string) => files.find((f) => f.path.endsWith(suffix))!.content;
const optionsOf = (master: string, port: string) => {
  const lines = master.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`${port} `));
  const options: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  -o ')) break;
    options.push(line.slice(5));
  }
  return options;
};

test('bad client-certificate settings are refused, naming the variable and what would be valid', () => {
  const revoked = `${dir}/revoked`;
  writeFileSync(revoked, `${FP}\nnot-a-fingerprint\n`);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ CLIENT_CA_FILE: leaf.cert }, /CLIENT_CA_FILE.*not a CA/],
    [{ CLIENT_CA_FILE: `${dir}/missing.pem` }, /CLIENT_CA_FILE.*cannot read the file/],
    [{ CLIENT_CA_FILE: revoked }, /CLIENT_CA_FILE.*holds no PEM certificate/],
    [{ CLIENT_CA_FILE: ca.cert, CLIENT_CERT_REVOKED_FILE: revoked }, /CLIENT_CERT_REVOKED_FILE.*line 2 is not a SHA-256 fingerprint/],
    [{ CLIENT_CERT_REQUIRED: 'bob@example.com' }, /CLIENT_CERT_REQUIRED.*needs CLIENT_CA_FILE/],
    [{ CLIENT_CA_FILE: ca.cert, CLIENT_CERT_REQUIRED: 'carol@example.com' }, /CLIENT_CERT_REQUIRED.*carol@example.com is not a user/],
  ];
  for (const [env, expected] of cases) {
    const result = load(env);
    assert.equal(result.ok, false, JSON.stringify(env));
    if (!result.ok) assert.match(result.errors.join('\n'), expected);
  }
  writeFileSync(revoked, `# a comment\n${FP.toLowerCase().match(/../g)!.join(':')}  # colons and lower case\n\n`);
  const good = load({ CLIENT_CA_FILE: ca.cert, CLIENT_CERT_REVOKED_FILE: revoked, CLIENT_CERT_REQUIRED: 'Bob@example.com' });
  assert.ok(good.ok);
  if (good.ok) assert.deepEqual(good.config.clientCerts, { caFile: ca.cert, revoked: [FP], required: ['bob@example.com'] });
});

test('587 and 465 ask for a certificate trusted by CLIENT_CA_FILE alone and let the policy service judge it first; port 25 and the default are unchanged', () => {
  const files = renderAll(input({ CLIENT_CA_FILE: ca.cert }));
  const master = file(files, '/master.cf');
  for (const port of ['587', '465']) {
    const options = optionsOf(master, port);
    for (const expected of ['smtpd_tls_ask_ccert=yes', `smtpd_tls_CAfile=${ca.cert}`, 'smtpd_tls_CApath=', 'smtpd_tls_fingerprint_digest=sha256']) assert.ok(options.includes(expected), `${port}: ${expected}`);
    assert.ok(options.some((o) => /^smtpd_relay_restrictions=check_policy_service,unix:private\/relaybox-policy,permit_sasl_authenticated,reject$/.test(o)), options.join('\n'));
    assert.ok(options.some((o) => o.startsWith('smtpd_recipient_restrictions=') && o.includes('reject_authenticated_sender_login_mismatch')));
  }
  assert.ok(!optionsOf(master, '25').some((o) => o.includes('ccert')));
  assert.match(file(files, '/main.cf'), /^milter_mail_macros = .*\{auth_authen\}.*\{cert_subject\}$/m);
  assert.match(file(files, '/main.cf'), /^smtpd_policy_service_default_action = 451 /m);

  const plain = file(renderAll(input()), '/master.cf');
  assert.ok(!plain.includes('ccert') && !plain.includes('reject_authenticated_sender_login_mismatch'));
  assert.ok(optionsOf(plain, '587').some((o) => o.startsWith('smtpd_recipient_restrictions=') && o.includes(',reject_sender_login_mismatch,')));
});

test('the relay verdict: a verified certificate relays as its account for its own senders; revoked, unknown or unverified do not; a login that must show its certificate', () => {
  const config = input({ CLIENT_CA_FILE: ca.cert, CLIENT_CERT_REQUIRED: 'bob@example.com' }).config;
  const rules = certificateRules({ ...config.clientCerts!, revoked: [FP] }, config.users, new Map([['alice@example.com', ['alice@example.com']], ['bob@example.com', ['bob@example.com']]]));
  const good = 'CD'.repeat(32);
  const rcpt = (attributes: Record<string, string>) => judgeRelay(rules, { request: 'smtpd_access_policy', protocol_state: 'RCPT', sender: 'alice@example.com', ...attributes });
  assert.deepEqual(rcpt({ ccert_subject: 'Alice@example.com', ccert_fingerprint: good }), { action: 'OK', account: 'alice@example.com' });
  assert.equal(rcpt({ ccert_subject: 'alice@example.com', ccert_fingerprint: good, sender: '' }).action, 'OK', 'the null sender, as for a login');
  assert.equal(rcpt({ ccert_fingerprint: good }).action, 'DUNNO', 'an unverified certificate (no subject) decides nothing');
  assert.equal(rcpt({}).action, 'DUNNO');
  assert.match(rcpt({ ccert_subject: 'alice@example.com', ccert_fingerprint: FP.match(/../g)!.join(':') }).action, /^554 5\.7\.1 .*revoked/);
  assert.match(rcpt({ ccert_subject: 'alice@example.com', ccert_fingerprint: good, ccert_pubkey_fingerprint: FP }).action, /revoked/, 'a revoked public key');
  assert.match(rcpt({ ccert_subject: 'printer@example.com', ccert_fingerprint: good }).action, /^554 5\.7\.1 .*names no account/);
  assert.match(rcpt({ ccert_subject: 'alice@example.com', ccert_fingerprint: good, sender: 'bob@example.com' }).action, /^553 5\.7\.1 <bob@example.com>.*not owned by alice@example.com/);
  assert.equal(rcpt({ sasl_username: 'alice@example.com' }).action, 'DUNNO', 'a login not in CLIENT_CERT_REQUIRED needs no certificate');
  assert.match(rcpt({ sasl_username: 'bob@example.com' }).action, /^530 5\.7\.0/);
  assert.match(rcpt({ sasl_username: 'bob@example.com', ccert_subject: 'alice@example.com', ccert_fingerprint: good }).action, /^530 /);
  assert.match(rcpt({ sasl_username: 'bob@example.com', ccert_subject: 'bob@example.com', ccert_fingerprint: FP }).action, /^530 /, 'its own certificate, revoked');
  assert.equal(rcpt({ sasl_username: 'bob@example.com', ccert_subject: 'bob@example.com', ccert_fingerprint: good }).action, 'DUNNO');
  assert.equal(sendingAccount({ ccert_subject: 'Alice@example.com' }), 'alice@example.com');
  assert.equal(sendingAccount({ sasl_username: 'bob@example.com', ccert_subject: 'alice@example.com' }), 'bob@example.com', 'the login wins');
});

// App passwords against the real Postfix and Dovecot: made with the CLI (and the admin API), one
// relays on 587 and reads IMAP as its scope allows, a revoked one is refused at once on both without
// a restart, APP_PASSWORDS_ONLY refuses the account's own password for SMTP AUTH (IMAP keeps it),
// limits and suspension hold whatever credential was used, the secret is in no log and the store
// keeps hashes only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { DOMAIN, Instance, PASSWORD, freePort, hashOf, runCli, waitFor } from '../helpers/instance.ts';
import { authWorks, submit } from '../helpers/smtp.ts';
import { ImapSession } from '../../src/protocol/session.ts';

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const TOKEN = 'app-passwords-admin-token-0123456789';

async function imapWorks(box: Instance, user: string, password: string): Promise<boolean> {
  const { client } = await ImapSession.connect(box.ports.imaps, { tls: true });
  try {
    return (await client.login(user, password)).status === 'OK';
  } finally {
    await client.logout().catch(() => client.destroy());
  }
}

describe('app passwords', () => {
  let box: Instance;
  let adminPort: number;
  /** Every secret made here, so the instance's logs and HTTP bodies are checked for each. */
  const made: string[] = [];

  async function cli(args: string[]) {
    const result = await runCli(args, box.env);
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      json = JSON.parse(result.stdout);
    } catch {
      json = undefined;
    }
    return { ...result, json };
  }

  async function add(user: string, name: string, scope?: string): Promise<string> {
    const { code, json, stderr } = await cli(['users', 'app-password', 'add', user, name, ...(scope ? ['--scope', scope] : []), '--json']);
    assert.equal(code, 0, stderr);
    assert.equal(json.name, name);
    assert.equal(typeof json.password, 'string');
    assert.ok(json.password.length >= 20);
    made.push(json.password);
    box.rememberSecret(json.password);
    return json.password as string;
  }

  function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: adminPort, method, path, headers: { authorization: `Bearer ${TOKEN}`, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  before(async () => {
    adminPort = await freePort();
    box = await Instance.start({ APP_PASSWORDS_ONLY: BOB, AUTH_FAILURE_DELAY: '0', ADMIN_TOKEN: TOKEN, PORT_ADMIN: String(adminPort), SEND_LIMIT_MESSAGES: '3', SEND_SUSPEND_THRESHOLD: '0' });
  });
  // destroy() checks every secret remembered (each app password made here) against the logs and bodies.
  after(async () => {
    await box.destroy();
  });

  test('an app password with scope both relays on 587 and reads IMAP; the login stays the account', async () => {
    const secret = await add(ALICE, 'laptop');
    const reply = await submit(box.ports, ALICE, ['someone@outside.example'], 'sent-with-app-password', { password: secret });
    assert.equal(reply.code, 250, reply.text);
    await waitFor('the message at the upstream', 20_000, async () => box.sink.messages().find((m) => m.includes('Subject: sent-with-app-password')), 300);
    assert.ok(await imapWorks(box, ALICE, secret));
    // Postfix saw the account, not a credential name: its sender checks and limits are the account's.
    await waitFor('sasl_username=alice in the log', 10_000, async () => box.lines.find((l) => l.includes(`sasl_username=${ALICE}`)), 200);
    // The log names the credential of each login (never its secret); the list shows when it was last used.
    const logins = await waitFor('two app_password_login events for laptop', 10_000, async () => {
      const found = box.logs().filter((l) => l.event === 'app_password_login' && l.credential === 'laptop' && l.user === ALICE);
      return found.length >= 2 ? found : undefined;
    }, 200);
    assert.ok(logins.length >= 2);
    const { json } = await cli(['users', 'app-password', 'list', ALICE, '--json']);
    assert.equal(typeof json.passwords[0].lastUsed, 'number');
    assert.ok(json.passwords[0].lastUsed >= json.passwords[0].created);
    // The account's own password still works (no APP_PASSWORDS_ONLY for alice), and is no app password login.
    const before = box.logs().filter((l) => l.event === 'app_password_login').length;
    assert.ok(await authWorks(box.ports, ALICE));
    assert.ok(await imapWorks(box, ALICE, PASSWORD));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(box.logs().filter((l) => l.event === 'app_password_login').length, before);
  });

  test('scope is honoured: an smtp one is refused on IMAP, an imap one on SMTP', async () => {
    const smtpOnly = await add(ALICE, 'printer', 'smtp');
    const imapOnly = await add(ALICE, 'phone-mail', 'imap');
    assert.ok(await authWorks(box.ports, ALICE, { password: smtpOnly }));
    assert.equal(await imapWorks(box, ALICE, smtpOnly), false);
    assert.ok(await imapWorks(box, ALICE, imapOnly));
    assert.equal(await authWorks(box.ports, ALICE, { password: imapOnly }), false);
    // A credential is not a key to another account.
    assert.equal(await authWorks(box.ports, BOB, { password: smtpOnly }), false);
  });

  test('a revoked app password is refused at once on SMTP and IMAP, without a restart', async () => {
    const secret = await add(ALICE, 'old-tablet');
    assert.ok(await authWorks(box.ports, ALICE, { password: secret }));
    assert.ok(await imapWorks(box, ALICE, secret));
    const restarts = () => box.logs().filter((l) => l.event === 'daemon_exit' || l.event === 'daemon_restart').length;
    const restartsBefore = restarts();
    const revoked = await cli(['users', 'app-password', 'revoke', ALICE, 'old-tablet']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked app password old-tablet/);
    assert.equal(await authWorks(box.ports, ALICE, { password: secret }), false, 'SMTP AUTH right after the revocation');
    assert.equal(await imapWorks(box, ALICE, secret), false, 'IMAP right after the revocation');
    assert.equal(restarts(), restartsBefore, 'no daemon restarted');
    // The others of the account are untouched.
    assert.ok(await imapWorks(box, ALICE, PASSWORD));
  });

  test('APP_PASSWORDS_ONLY: the own password is refused for SMTP AUTH but opens IMAP; an app password relays', async () => {
    assert.equal(await authWorks(box.ports, BOB), false, 'own password on 587');
    assert.equal(await authWorks(box.ports, BOB, { implicitTls: true }), false, 'own password on 465');
    assert.ok(await imapWorks(box, BOB, PASSWORD), 'own password on IMAP');
    const secret = await add(BOB, 'scanner', 'smtp');
    const reply = await submit(box.ports, BOB, ['someone@outside.example'], 'bob-with-app-password', { password: secret });
    assert.equal(reply.code, 250, reply.text);
  });

  test('sending limits and suspension apply to the account whatever credential it used', async () => {
    const secret = await add(BOB, 'relay-box', 'smtp');
    // SEND_LIMIT_MESSAGES=3 per hour for bob: one sent above, two more, then refused.
    for (const n of [1, 2]) assert.equal((await submit(box.ports, BOB, ['someone@outside.example'], `bob-limit-${n}`, { password: secret })).code, 250);
    const over = await submit(box.ports, BOB, ['someone@outside.example'], 'bob-limit-over', { password: secret });
    assert.equal(over.code, 451, over.text);
    const suspended = await cli(['users', 'suspend', ALICE, '--reason', 'lost laptop']);
    assert.equal(suspended.code, 0, suspended.stderr);
    const laptop = await cli(['users', 'app-password', 'list', ALICE, '--json']);
    assert.ok(laptop.json.passwords.some((p: { name: string }) => p.name === 'laptop'));
    const refused = await submit(box.ports, ALICE, ['someone@outside.example'], 'suspended-app-password', { password: made[0]! });
    assert.equal(refused.code, 550, refused.text);
    assert.equal((await cli(['users', 'unsuspend', ALICE])).code, 0);
  });

  test('list shows names, scopes and dates, never a hash; the store keeps hashes only, 0600; the Dovecot files 0640 group dovecot', async () => {
    const { code, json, stderr } = await cli(['users', 'app-password', 'list', '--json']);
    assert.equal(code, 0, stderr);
    const names = json.passwords.map((p: { user: string; name: string; scope: string }) => `${p.user} ${p.name} ${p.scope}`).sort();
    assert.deepEqual(names, [`${ALICE} laptop both`, `${ALICE} phone-mail imap`, `${ALICE} printer smtp`, `${BOB} relay-box smtp`, `${BOB} scanner smtp`]);
    assert.deepEqual(json.appPasswordsOnly, [BOB]);
    assert.ok(json.passwords.every((p: Record<string, unknown>) => p.hash === undefined && typeof p.created === 'number'));
    const table = await cli(['users', 'app-password', 'list']);
    assert.match(table.stdout, /printer\s+smtp/);
    const store = readFileSync(`${box.stateDir}/app-passwords.json`, 'utf8');
    assert.equal(statSync(`${box.stateDir}/app-passwords.json`).mode & 0o777, 0o600);
    for (const secret of made) assert.ok(!store.includes(secret), 'a secret in the store');
    assert.equal((store.match(/\{SHA512-CRYPT\}/g) ?? []).length, 5);
    const dir = `${box.stateDir}/dovecot/app-passwords`;
    for (const file of readdirSync(dir)) assert.equal(statSync(`${dir}/${file}`).mode & 0o777, 0o640, file);
  });

  test('the admin API makes, lists and revokes the same credentials (audited)', async () => {
    const created = await api('POST', `/api/v1/users/${ALICE}/app-passwords`, { name: 'api-made', scope: 'imap' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    made.push(created.body.password);
    box.rememberSecret(created.body.password);
    assert.ok(await imapWorks(box, ALICE, created.body.password));
    const listed = await api('GET', `/api/v1/users/${ALICE}/app-passwords`);
    assert.ok(listed.body.passwords.some((p: { name: string }) => p.name === 'api-made'));
    box.bodies.push(JSON.stringify(listed.body));
    const bad = await api('POST', `/api/v1/users/${ALICE}/app-passwords`, { name: 'x', scope: 'pop3' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /--scope "pop3": use smtp, imap, both/);
    const gone = await api('DELETE', `/api/v1/users/${ALICE}/app-passwords/api-made`);
    assert.equal(gone.status, 200);
    assert.equal(await imapWorks(box, ALICE, created.body.password), false);
    const audits = box.logs().filter((l) => l.event === 'admin_action' && String(l.action).startsWith('app_password_'));
    assert.ok(audits.some((l) => l.action === 'app_password_add' && l.credential === 'api-made' && l.user === ALICE));
    assert.ok(audits.some((l) => l.action === 'app_password_revoke' && l.credential === 'old-tablet'));
  });

  test('bad input is refused with a clear error and exit 2; what is not there, exit 1', async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['users', 'app-password', 'add', ALICE], /give USER and NAME/, 2],
      [['users', 'app-password', 'add', ALICE, 'x', '--scope', 'pop3'], /--scope "pop3": use smtp, imap or both/, 2],
      [['users', 'app-password', 'add', ALICE, 'bad name'], /app password name "bad name"/, 2],
      [['users', 'app-password', 'add', 'not-an-address', 'x'], /is not a user address/, 2],
      [['users', 'app-password', 'frobnicate'], /unknown app-password command "frobnicate"/, 2],
      [['users', 'app-password', 'revoke', ALICE, 'never-made'], /has no app password named never-made/, 1],
      [['users', 'app-password', 'add', `nobody@${DOMAIN}`, 'x'], /is not a user in MAIL_USERS/, 1],
      [['users', 'app-password', 'add', ALICE, 'laptop'], /already has an app password named laptop/, 1],
    ];
    for (const [args, message, exit] of cases) {
      const result = await cli(args);
      assert.equal(result.code, exit, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
    }
  });
});

test('APP_PASSWORDS_ONLY naming an address that is not a user: refused at start, no daemon started', async () => {
  const { code, stderr } = await runCli(['check-config'], { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k === 'PATH')) as Record<string, string>, MAIL_HOSTNAME: 'mail.relaybox.test', MAIL_DOMAINS: DOMAIN, RELAY_HOST: '[127.0.0.1]:2525', STATE_DIR: '/tmp/rb-apppw-bad', MAIL_USERS: `alice@${DOMAIN}:{PLAIN}xxxxxxxx`, APP_PASSWORDS_ONLY: `carol@${DOMAIN}` });
  assert.notEqual(code, 0);
  assert.match(stderr, /APP_PASSWORDS_ONLY.*carol@relaybox\.test is not a user in MAIL_USERS/s);
});

test('an account removed from MAIL_USERS_FILE relays with none of its app passwords (hot reload, no restart)', async () => {
  const usersFile = `${mkdtempSync('/tmp/rbapusers-')}/users`;
  const dave = `dave@${DOMAIN}`;
  writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\n${dave}:${hashOf(PASSWORD)}\n`);
  const box = await Instance.start({ MAIL_USERS: '', MAIL_USERS_FILE: usersFile, AUTH_FAILURE_DELAY: '0' });
  let secret = '';
  try {
    const made = await runCli(['users', 'app-password', 'add', dave, 'phone', '--json'], box.env);
    assert.equal(made.code, 0, made.stderr);
    secret = JSON.parse(made.stdout).password;
    box.rememberSecret(secret);
    assert.ok(await authWorks(box.ports, dave, { password: secret }));
    const reloads = box.logs().filter((l) => l.event === 'reload').length;
    writeFileSync(usersFile, `alice@${DOMAIN}:${hashOf(PASSWORD)}\n`);
    await waitFor('the users file reloaded', 15_000, async () => box.logs().filter((l) => l.event === 'reload').length > reloads || undefined, 200);
    await waitFor('dave refused', 5_000, async () => !(await authWorks(box.ports, dave, { password: secret })) || undefined, 300);
    assert.equal(await authWorks(box.ports, dave, { password: secret }), false);
    assert.ok(await authWorks(box.ports, `alice@${DOMAIN}`));
  } finally {
    await box.destroy();
  }
});

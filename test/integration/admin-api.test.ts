// The admin API on its own listener: refused without credentials and with a wrong token; a token or
// an ADMIN_USERS login (the mail password, checked by Dovecot) lets one in; a session's
// state-changing requests need its CSRF token; failed logins ban the address (on SMTP too); bad
// input is refused with what is wrong; no secret is ever returned.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { DOMAIN, freePort, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { SmtpClient } from '../helpers/smtp.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const ALICE = `alice@${DOMAIN}`;

interface Answer { status: number; body: any; headers: Record<string, string | string[] | undefined> } // eslint-disable-line @typescript-eslint/no-explicit-any

function call(port: number, method: string, path: string, options: { headers?: Record<string, string>; body?: unknown; raw?: string; from?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const req = request({ host: '127.0.0.1', port, method, path, localAddress: options.from, headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

describe('admin API', () => {
  let box: Instance;
  let port: number;
  const bodies: string[] = [];
  const api = async (method: string, path: string, options: Parameters<typeof call>[3] = {}) => {
    const answer = await call(port, method, `/api/v1${path}`, options);
    bodies.push(JSON.stringify(answer.body));
    return answer;
  };
  before(async () => {
    port = await freePort();
    box = await Instance.start({ ADMIN_TOKEN: TOKEN, ADMIN_USERS: ALICE, PORT_ADMIN: String(port), AUTH_BAN_THRESHOLD: '3', AUTH_BAN_WINDOW: '10m', AUTH_BAN_DURATION: '1h', AUTH_FAILURE_DELAY: '0' });
  });
  after(async () => {
    await box.destroy();
    const everything = [...box.lines, ...bodies].join('\n');
    assert.ok(!everything.includes(TOKEN), 'the admin token never appears in logs or answers');
  });

  test('refused without credentials and with a wrong token; a token lets one in; not on the status port', async () => {
    const none = await api('GET', '/status');
    assert.equal(none.status, 401);
    assert.match(none.body.error, /log in first/);
    const wrong = await api('GET', '/status', { headers: { authorization: 'Bearer not-the-token-at-all' } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error, /valid bearer token/);
    const right = await api('GET', '/status', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(right.status, 200);
    assert.equal(right.body.ready, true);
    assert.equal(right.headers['cache-control'], 'no-store');
    assert.equal((await call(box.ports.http, 'GET', '/api/v1/status', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404, 'the API is not on PORT_HTTP');
    const page = await call(port, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  });

  test('ADMIN_USERS log in with their mail password; sessions need the CSRF token to change anything', async () => {
    assert.equal((await api('POST', '/login', { body: { user: ALICE, password: 'wrong' } })).status, 401);
    assert.equal((await api('POST', '/login', { body: { user: `bob@${DOMAIN}`, password: PASSWORD } })).status, 401, 'a user who is not an admin');
    const login = await api('POST', '/login', { body: { user: ALICE, password: PASSWORD } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.who, ALICE);
    const cookie = String(login.headers['set-cookie']);
    assert.match(cookie, /^relaybox_admin=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\//);
    const session = { cookie: cookie.split(';')[0]! };
    assert.equal((await api('GET', '/users', { headers: session })).status, 200);
    const forged = await api('POST', '/bans', { headers: session, body: { address: '192.0.2.50', duration: '10m' } });
    assert.equal(forged.status, 403);
    assert.match(forged.body.error, /x-csrf-token/);
    assert.equal((await api('GET', '/bans', { headers: session })).body.length, 0, 'the forged request changed nothing');
    const banned = await api('POST', '/bans', { headers: { ...session, 'x-csrf-token': login.body.csrf }, body: { address: '192.0.2.50', duration: '10m', reason: 'by hand' } });
    assert.equal(banned.status, 200, JSON.stringify(banned.body));
    // The audit line reaches the test through the supervisor's stdout, a moment after the answer.
    const audit = await waitFor('the ban_add audit event', 10_000, () => box.logs().find((l) => l.event === 'admin_action' && l.action === 'ban_add'));
    assert.equal(audit?.actor, ALICE);
    assert.equal((await api('DELETE', '/bans/192.0.2.50', { headers: { ...session, 'x-csrf-token': login.body.csrf } })).status, 200);
    await waitFor('the lift audited', 10_000, () => box.logs().filter((l) => l.event === 'admin_action').length === 2 || undefined);
    await api('POST', '/logout', { headers: session });
    assert.equal((await api('GET', '/users', { headers: session })).status, 401, 'logged out');
  });

  test('bad input: the error names what is wrong, nothing changes', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', '/queue/frobnicate', {}, 400, /"frobnicate" is not a queue action/],
      ['POST', '/queue/hold', {}, 400, /name the message/],
      ['POST', '/queue/hold', { filter: { state: 'nope' } }, 400, /state: "nope" is not a queue state/],
      ['POST', '/queue/hold', { ids: 'ABC' }, 400, /ids: a list of queue ids/],
      ['GET', '/queue/not..an..id', undefined, 400, /not a Postfix queue id/],
      ['GET', '/queue?state=limbo', undefined, 400, /state: "limbo"/],
      ['POST', '/bans', { address: 'somewhere' }, 400, /is not an IP address/],
      ['POST', '/bans', {}, 400, /address: required/],
      ['DELETE', '/bans/192.0.2.1', undefined, 404, /is not banned/],
      ['POST', '/users/alice@relaybox.test/suspend', {}, 400, /reason: required/],
      ['POST', '/users/alice@relaybox.test/unsuspend', { held: 'keep' }, 400, /held: release or delete/],
      ['POST', '/dkim/relaybox.test/dance', {}, 400, /not a rotation step/],
    ];
    for (const [method, path, body, status, error] of cases) {
      const answer = await api(method, path, { headers: auth, ...(body !== undefined ? { body } : {}) });
      assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.error, error, `${method} ${path}`);
    }
    const malformed = await api('POST', '/bans', { headers: auth, raw: '{"address": ' });
    assert.equal(malformed.status, 400);
    assert.equal(box.logs().filter((l) => l.event === 'admin_action').length, 2, 'only the earlier ban and its lift');
  });

  test('failed logins count toward a ban: the address is then refused by the API (right token too) and on SMTP', async () => {
    const from = '127.0.0.3';
    for (let i = 0; i < 3; i++) assert.equal((await api('POST', '/login', { from, body: { token: `wrong-token-${i}-0123456789` } })).status, 401);
    await waitFor('the ban', 10_000, () => box.logs().find((l) => l.event === 'ban' && l.address === from));
    const refused = await api('GET', '/status', { from, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(refused.status, 403);
    assert.match(refused.body.error, /banned/);
    const greeting = await waitFor('SMTP refused at connect', 10_000, async () => {
      const { client, greeting } = await SmtpClient.connect(box.ports.submission, { localAddress: from });
      client.destroy();
      return greeting.code === 554 ? greeting : undefined;
    }, 300);
    assert.equal(greeting.code, 554);
    assert.equal((await api('GET', '/status', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200, 'another address is unaffected');
  });
});

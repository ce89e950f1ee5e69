// `relaybox selftest` and GET /selftest against a running instance.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, runCli } from '../helpers/instance.ts';

const TOKEN = 'selftest-token-0123456789abcdef';

describe('selftest', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ SELFTEST_TOKEN: TOKEN, AUTH_FAILURE_DELAY: '0' });
  });
  after(async () => {
    await box.destroy();
  });

  test('with credentials: every step passes, one line each, exit 0, nothing sent', async () => {
    const before = box.sink.messages().length;
    const result = await runCli(['selftest'], { ...box.env, SELFTEST_USER: `alice@${DOMAIN}`, SELFTEST_PASSWORD: PASSWORD });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.deepEqual(lines.map((l) => l.slice(0, 4).trim()), ['OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK']);
    assert.match(result.stdout, /AUTH with a wrong password is refused: 535/);
    assert.match(result.stdout, /unauthenticated relay on port \d+ is refused: 554/);
    assert.match(result.stdout, /reaches RCPT .*: 250/);
    assert.ok(!result.stdout.includes(PASSWORD));
    await box.waitQueueEmpty();
    assert.equal(box.sink.messages().length, before, 'the selftest sent a message');
  });

  test('without credentials the authenticated step is skipped and says so', async () => {
    const result = await runCli(['selftest'], box.env);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^SKIP authenticated transaction: set SELFTEST_USER and SELFTEST_PASSWORD/m);
  });

  test('a wrong SELFTEST_PASSWORD fails with exit 1 at that step', async () => {
    const result = await runCli(['selftest'], { ...box.env, SELFTEST_USER: `alice@${DOMAIN}`, SELFTEST_PASSWORD: 'not-the-password' });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^FAIL AUTH as alice@relaybox\.test: 535/m);
  });

  test('GET /selftest needs the bearer token', async () => {
    assert.equal((await fetch(box.url('/selftest'))).status, 401);
    assert.equal((await fetch(box.url('/selftest'), { headers: { authorization: 'Bearer wrong-token-wrong-token-xx' } })).status, 401);
    const response = await fetch(box.url('/selftest'), { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await response.json()) as { status: string; steps: Array<{ status: string }> };
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'ok');
    assert.ok(body.steps.some((s) => s.status === 'skip'));
    assert.ok(!JSON.stringify(body).includes(TOKEN));
  });
});

describe('selftest disabled', () => {
  test('GET /selftest is 404 without SELFTEST_TOKEN', async () => {
    const box = await Instance.start();
    try {
      const response = await fetch(box.url('/selftest'), { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(response.status, 404);
    } finally {
      await box.destroy();
    }
  });
});

// Brute force: after AUTH_BAN_THRESHOLD failures an address is refused at connect on every SMTP port
// for AUTH_BAN_DURATION; other addresses are unaffected; the ban lifts by itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOMAIN, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { gauge, scrape } from '../helpers/metrics.ts';
import { SmtpClient } from '../helpers/smtp.ts';

const ALICE = `alice@${DOMAIN}`;
const ATTACKER = '127.0.0.2';
const BYSTANDER = '127.0.0.3';

async function tryAuth(box: Instance, from: string, password: string, timeoutMs = 30_000) {
  const { client, greeting } = await SmtpClient.connect(box.ports.submission, { localAddress: from, timeoutMs });
  try {
    if (greeting.code !== 220) return { greeting, auth: undefined };
    await client.ehlo();
    await client.starttls();
    const auth = await client.authPlain(ALICE, password);
    return { greeting, auth };
  } finally {
    client.destroy();
  }
}

describe('brute-force ban', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ AUTH_BAN_THRESHOLD: '10', AUTH_BAN_WINDOW: '10m', AUTH_BAN_DURATION: '8s', AUTH_FAILURE_DELAY: '0' });
  });
  after(async () => {
    await box.destroy();
  });

  test('10 failures ban the address on every SMTP port; others unaffected; the ban expires', async (t) => {
    // In parallel, so Dovecot's growing per-address delay does not stretch the test.
    const attempts = await Promise.all(Array.from({ length: 10 }, () => tryAuth(box, ATTACKER, 'wrong password')));
    assert.ok(attempts.every((a) => a.auth?.code === 535));
    await waitFor('the ban event', 10_000, () => box.logs().find((l) => l.event === 'ban' && l.address === ATTACKER));
    assert.match(readFileSync(`${box.stateDir}/postfix/banned_clients`, 'utf8'), /^127\.0\.0\.2 REJECT/m);

    // The right password from the banned address: refused at connect, on 587, 25 and 465.
    // Postfix has reloaded; smtpd processes that were idle are replaced within moments.
    for (const [port, tls] of [[box.ports.submission, false], [box.ports.smtp, false], [box.ports.submissions, true]] as const) {
      const greeting = await waitFor(`a refusal at connect on ${port}`, 5000, async () => {
        const { client, greeting } = await SmtpClient.connect(port, { localAddress: ATTACKER, tls });
        client.destroy();
        return greeting.code === 554 ? greeting : undefined;
      }, 200);
      assert.equal(greeting.code, 554, `port ${port}: ${greeting.text}`);
      assert.equal(greeting.enhanced, '5.7.1');
      assert.match(greeting.text, /too many failed authentications/);
    }
    const health = await box.get('/health');
    assert.equal(health.body.bansActive, 1);
    assert.equal(gauge(await scrape(box.url('/metrics')), 'relaybox_bans_active'), 1);

    const bystander = await tryAuth(box, BYSTANDER, PASSWORD);
    assert.equal(bystander.auth?.code, 235, 'another address must be unaffected');

    const banned = await tryAuth(box, ATTACKER, PASSWORD);
    assert.equal(banned.greeting.code, 554);

    await waitFor('the unban event', 20_000, () => box.logs().find((l) => l.event === 'unban' && l.address === ATTACKER), 200);
    assert.equal(gauge(await scrape(box.url('/metrics')), 'relaybox_bans_active'), 0);
    assert.equal((await box.get('/health')).body.bansActive, 0);
    // smtpd processes pick up the reloaded map as they are replaced: allow them a moment.
    await waitFor('a greeting for the former attacker', 5000, async () => {
      const { client, greeting } = await SmtpClient.connect(box.ports.smtp, { localAddress: ATTACKER });
      client.destroy();
      return greeting.code === 220 ? true : undefined;
    }, 200);
    const started = performance.now();
    const after = await tryAuth(box, ATTACKER, PASSWORD, 40_000);
    t.diagnostic(`after the ban: AUTH answered in ${Math.round(performance.now() - started)} ms (Dovecot delays an address with recent failures)`);
    assert.equal(after.greeting.code, 220);
    assert.equal(after.auth?.code, 235);
  });
});

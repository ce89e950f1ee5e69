// The tutorial's flow against the real image, started with compose.yaml's security options:
// STARTTLS + AUTH on submission, wrong password refused, unauthenticated relay refused,
// authenticated relay delivered to an smtp-sink upstream on the host; and the first-run account.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { PASSWORD, USER, log } from './harness.ts';
import { withRelaybox } from './fixture.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

test('container: authenticated relaying through the image', { timeout: 30 * 60_000 }, async (t) => {
  const box = await withRelaybox(t);
  if (!box) return;
  const { ports, sink } = box;

  await t.test('/ready and /health answer 200', async () => {
    assert.equal(await box.status('/ready'), 200);
    assert.equal(await box.status('/health'), 200);
  });

  await t.test('the image healthcheck passes inside the container', async () => {
    const r = await box.exec(['relaybox-healthcheck']);
    assert.equal(r.code, 0, r.output);
  });

  await t.test('submission: STARTTLS, AUTH PLAIN good password 235, wrong password 535', async () => {
    const { client, greeting } = await SmtpClient.connect(ports.submission);
    try {
      assert.equal(greeting.code, 220, greeting.text);
      let r = await client.ehlo();
      assert.equal(r.code, 250);
      assert.match(r.text, /STARTTLS/);
      assert.doesNotMatch(r.text, /AUTH/, 'AUTH must not be offered before TLS');
      r = await client.starttls(); // STARTTLS 220, the handshake, then the EHLO reply
      assert.equal(r.code, 250, r.text);
      assert.match(r.text, /AUTH\b.*PLAIN/);
      r = await client.authPlain(USER, 'wrong password');
      assert.equal(r.code, 535, r.text);
      r = await client.authPlain(USER, PASSWORD);
      assert.equal(r.code, 235, r.text);
    } finally {
      await client.quit();
    }
  });

  await t.test('port 25: unauthenticated relay to an outside address is refused with 554 5.7.1', async () => {
    const { client } = await SmtpClient.connect(ports.smtp);
    try {
      await client.ehlo();
      let r = await client.cmd('MAIL FROM:<someone@elsewhere.example>');
      assert.equal(r.code, 250, r.text);
      r = await client.cmd('RCPT TO:<victim@outside.example>');
      assert.equal(r.code, 554, r.text);
      assert.match(r.text, /5\.7\.1/);
    } finally {
      await client.quit();
    }
  });

  await t.test('submission without AUTH cannot relay', async () => {
    const { client } = await SmtpClient.connect(ports.submission);
    try {
      await client.ehlo();
      await client.starttls();
      const { final: r } = await client.send(USER, ['victim@outside.example'], message(USER, 'victim@outside.example', 'must-not-relay'));
      assert.equal(r.code, 554, r.text);
      assert.equal(r.enhanced, '5.7.1', r.text);
    } finally {
      await client.quit();
    }
  });

  await t.test('authenticated relay (587 and 465) is delivered to the upstream', async () => {
    const markers: string[] = [];
    for (const [port, implicitTls] of [[ports.submission, false], [ports.submissions, true]] as const) {
      const subject = `relay-${port}-${Date.now()}`;
      markers.push(subject);
      const { client } = await SmtpClient.connect(port, { tls: implicitTls });
      try {
        await client.ehlo();
        if (!implicitTls) {
          await client.starttls();
        }
        let r = await client.authPlain(USER, PASSWORD);
        assert.equal(r.code, 235, r.text);
        r = (await client.send(USER, ['bob@outside.example'], message(USER, 'bob@outside.example', subject))).final;
        assert.equal(r.code, 250, r.text);
      } finally {
        await client.quit();
      }
    }
    const arrived = await sink.waitFor(markers, 60_000);
    assert.ok(arrived, `not delivered to smtp-sink within 60 s; logs:\n${(await box.logs()).slice(-4000)}`);
    await box.waitQueueEmpty();
    for (const m of markers) assert.equal(sink.count(m), 1, `${m} delivered ${sink.count(m)} times`);
    assert.equal(sink.count('must-not-relay'), 0, 'the unauthenticated message reached the upstream');
  });

  await t.test('an authenticated user cannot send as another address', async () => {
    const { client } = await SmtpClient.connect(ports.submission);
    try {
      await client.ehlo();
      await client.starttls();
      assert.equal((await client.authPlain(USER, PASSWORD)).code, 235);
      assert.equal((await client.cmd('MAIL FROM:<ceo@relaybox.test>')).code, 250);
      const rc = await client.cmd('RCPT TO:<bob@outside.example>');
      assert.equal(rc.code, 553, rc.text);
      assert.equal(rc.enhanced, '5.7.1', rc.text);
    } finally {
      await client.quit();
    }
  });
});

test('container: first start without users generates one account, printed once', { timeout: 30 * 60_000 }, async (t) => {
  const box = await withRelaybox(t, { env: { MAIL_USERS: undefined } });
  if (!box) return;
  const logs = await box.logs();
  const line = logs.split('\n').find((l) => l.includes('generated_account'));
  assert.ok(line, `no generated_account log line:\n${logs.slice(-3000)}`);
  const entry = JSON.parse(line) as { address?: string; password?: string };
  assert.ok(entry.address && entry.password, line);

  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    const r = await client.authPlain(entry.address, entry.password);
    assert.equal(r.code, 235, r.text);
  } finally {
    await client.quit();
  }

  // Only a hash is stored: the file exists, holds exactly the account as address:{SCHEME}hash, and
  // the hash is of the printed password (checked by Dovecot's own doveadm on the host).
  const stored = await box.exec(['cat', '/var/lib/relaybox/generated-users']);
  assert.equal(stored.code, 0, `generated-users: ${stored.output}`);
  const rows = stored.output.split('\n').filter(Boolean);
  assert.equal(rows.length, 1, stored.output);
  const [address, hash] = [rows[0]!.slice(0, rows[0]!.indexOf(':')), rows[0]!.slice(rows[0]!.indexOf(':') + 1)];
  assert.equal(address, entry.address);
  assert.match(hash, /^\{SHA512-CRYPT\}\$6\$/, 'a SHA512-CRYPT hash');
  assert.ok(!stored.output.includes(entry.password), 'the plain password must not be stored');
  execFileSync('doveadm', ['pw', '-t', hash, '-p', entry.password]); // throws unless the hash matches
  log(`first-run account ${address}: stored as a SHA512-CRYPT hash`);

  await box.container.stop({ t: 20 });
  await box.replace();
  const again = await box.logs();
  // The second start reuses the stored account: the same address, no new password, the stored file
  // unchanged, and the password printed the first time still logs in.
  const reused = again.split('\n').filter((l) => l.includes('generated_account')).map((l) => JSON.parse(l) as { address?: string; password?: string });
  assert.equal(reused.length, 1, again.slice(-3000));
  assert.equal(reused[0]!.address, entry.address, 'another account was generated on the second start');
  assert.equal(reused[0]!.password, undefined, 'a password was printed on the second start');
  assert.ok(!again.includes(entry.password), 'the password was printed again on the second start');
  const storedAgain = await box.exec(['cat', '/var/lib/relaybox/generated-users']);
  assert.equal(storedAgain.output, stored.output, 'the stored account changed on the second start');
  const second = await SmtpClient.connect(box.ports.submission);
  try {
    await second.client.ehlo();
    await second.client.starttls();
    const r = await second.client.authPlain(entry.address, entry.password);
    assert.equal(r.code, 235, `the first password after the second start: ${r.text}`);
  } finally {
    await second.client.quit();
  }
});

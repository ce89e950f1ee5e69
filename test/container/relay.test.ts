// The tutorial's flow against the real image, started with compose.yaml's security options:
// STARTTLS + AUTH on submission, wrong password refused, unauthenticated relay refused,
// authenticated relay delivered to an smtp-sink upstream on the host; and the first-run account.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PASSWORD, USER, Sink, containerLogs, createVolume, engineOrSkip, ensureImage, execIn, freePorts, log,
  relayboxEnv, relayboxPorts, removeContainer, removeVolume, startRelaybox, waitReady,
} from './harness.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

test('container: authenticated relaying through the image', { timeout: 30 * 60_000 }, async (t) => {
  const docker = await engineOrSkip(t);
  if (!docker) return;
  const image = await ensureImage(docker);
  const ports = await relayboxPorts();
  const [sinkPort] = (await freePorts(1)) as [number];
  const sink = new Sink(sinkPort);
  await sink.start();
  const volume = await createVolume(docker);
  const container = await startRelaybox(docker, image, { env: relayboxEnv(ports, sinkPort), volume });
  t.after(async () => {
    if (process.env.RELAYBOX_TEST_KEEP) log(`kept container ${container.id.slice(0, 12)}`);
    else await removeContainer(container);
    await removeVolume(docker, volume);
    await sink.dispose();
  });

  await t.test('/ready answers 200', async () => {
    const ms = await waitReady(container, ports.http, 90_000);
    log(`ready ${ms} ms after start`);
    const health = await fetch(`http://127.0.0.1:${ports.http}/health`);
    assert.equal(health.status, 200);
  });

  await t.test('the image healthcheck passes inside the container', async () => {
    const r = await execIn(container, ['relaybox-healthcheck']);
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
      assert.ok(r.code >= 500 && r.code < 600, r.text);
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
    assert.ok(arrived, `not delivered to smtp-sink within 60 s; logs:\n${(await containerLogs(container)).slice(-4000)}`);
    for (const m of markers) assert.equal(sink.count(m), 1, `${m} delivered ${sink.count(m)} times`);
  });

  await t.test('an authenticated user cannot send as another address', async () => {
    const { client } = await SmtpClient.connect(ports.submission);
    try {
      await client.ehlo();
      await client.starttls();
      assert.equal((await client.authPlain(USER, PASSWORD)).code, 235);
      const r = await client.cmd('MAIL FROM:<ceo@relaybox.test>');
      const rc = r.code === 250 ? await client.cmd('RCPT TO:<bob@outside.example>') : r;
      assert.ok(rc.code >= 500, rc.text);
    } finally {
      await client.quit();
    }
  });
});

test('container: first start without users generates one account, printed once', { timeout: 30 * 60_000 }, async (t) => {
  const docker = await engineOrSkip(t);
  if (!docker) return;
  const image = await ensureImage(docker);
  const ports = await relayboxPorts();
  const [sinkPort] = (await freePorts(1)) as [number];
  const volume = await createVolume(docker);
  const env = relayboxEnv(ports, sinkPort).filter((e) => !e.startsWith('MAIL_USERS='));
  let container = await startRelaybox(docker, image, { env, volume });
  t.after(async () => {
    await removeContainer(container);
    await removeVolume(docker, volume);
  });
  await waitReady(container, ports.http, 90_000);
  const logs = await containerLogs(container);
  const line = logs.split('\n').find((l) => l.includes('generated_account'));
  assert.ok(line, `no generated_account log line:\n${logs.slice(-3000)}`);
  const entry = JSON.parse(line) as { address?: string; password?: string };
  assert.ok(entry.address && entry.password, line);

  const { client } = await SmtpClient.connect(ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    const r = await client.authPlain(entry.address, entry.password);
    assert.equal(r.code, 235, r.text);
  } finally {
    await client.quit();
  }

  // The password is never printed again, and only a hash is stored.
  const stored = await execIn(container, ['sh', '-c', 'cat /var/lib/relaybox/generated-users 2>/dev/null || true']);
  assert.ok(!stored.output.includes(entry.password), 'the plain password must not be stored');
  await container.stop({ t: 20 });
  await removeContainer(container);
  container = await startRelaybox(docker, image, { env, volume });
  await waitReady(container, ports.http, 90_000);
  assert.ok(!(await containerLogs(container)).includes(entry.password), 'the password was printed again on the second start');
});

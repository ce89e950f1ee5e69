// The image relays through a smarthost that refuses mail without AUTH, over verified TLS: Postfix's
// smtp client has Cyrus SASL's PLAIN/LOGIN modules (libsasl2-modules, which --no-install-recommends
// leaves out), the private CA from RELAY_TLS_CA_FILE is used, and the system CA links are copied
// into the chroot.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  PASSWORD, USER, containerLogs, createVolume, engine, ensureImage, execIn, log, relayboxEnv, relayboxPorts,
  removeContainer, removeVolume, startRelaybox, waitReady,
} from './harness.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream } from '../helpers/upstream.ts';

const RELAY = { username: 'relay-user@provider.test', password: 'relay-secret-in-the-image' };

test('container: AUTH to a smarthost whose certificate is verified', { timeout: 30 * 60_000 }, async (t) => {
  const docker = await engine(t);
  if (!docker) return;
  const image = await ensureImage(docker);
  const ca = new TestCa();
  const smarthost = await Upstream.start({ certificate: ca.issue('smarthost.test'), requireAuth: true, credentials: RELAY, name: 'smarthost.test' });
  const ports = await relayboxPorts();
  const volume = await createVolume(docker);
  // The CA file goes into the volume (the container's root filesystem is read-only).
  await docker.run(image, ['sh', '-c', 'printf "%s" "$CA_PEM" > /var/lib/relaybox/relay-ca.pem'], process.stderr, {
    Env: [`CA_PEM=${readFileSync(ca.cert, 'utf8')}`],
    HostConfig: { Binds: [`${volume}:/var/lib/relaybox`], AutoRemove: true },
  });
  const env = relayboxEnv(ports, smarthost.port, {
    RELAY_HOST: `[127.0.0.1]:${smarthost.port}`,
    RELAY_TLS_NAME: 'smarthost.test',
    RELAY_TLS_CA_FILE: '/var/lib/relaybox/relay-ca.pem',
    RELAY_USERNAME: RELAY.username,
    RELAY_PASSWORD: RELAY.password,
  });
  const container = await startRelaybox(docker, image, { env, volume });
  t.after(async () => {
    await removeContainer(container);
    await removeVolume(docker, volume);
    await smarthost.stop();
    ca.remove();
  });
  log(`ready ${await waitReady(container, ports.http, 90_000)} ms after start`);

  const { client } = await SmtpClient.connect(ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(USER, PASSWORD)).code, 235);
    const { final } = await client.send(USER, ['bob@outside.example'], message(USER, 'bob@outside.example', 'image-auth-upstream'));
    assert.equal(final.code, 250, final.text);
  } finally {
    await client.quit();
  }
  const deadline = Date.now() + 60_000;
  while (!smarthost.messages.some((m) => m.data.includes('Subject: image-auth-upstream')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const logs = await containerLogs(container);
  assert.ok(smarthost.messages.some((m) => m.data.includes('Subject: image-auth-upstream')), `not delivered; the smarthost saw ${smarthost.commands.map((c) => c.line.split(' ')[0]).join(' ')}; logs:\n${logs.slice(-4000)}`);
  assert.deepEqual(smarthost.passwords, [{ user: RELAY.username, password: RELAY.password, tls: true }]);
  assert.match(logs, /Verified TLS connection established to 127\.0\.0\.1/);
  assert.ok(!logs.includes(RELAY.password), 'the relay password never appears in the logs');
  const links = await execIn(container, ['sh', '-c', 'find /var/lib/relaybox/queue/etc/ssl/certs -type f -name "*.0" | wc -l']);
  assert.ok(Number(links.output.trim()) > 50, `CA links in the chroot: ${links.output}`);
});

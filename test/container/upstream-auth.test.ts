// The image relays through a smarthost that refuses mail without AUTH, over verified TLS: Postfix's
// smtp client has Cyrus SASL's PLAIN/LOGIN modules (libsasl2-modules, which --no-install-recommends
// leaves out), the private CA from RELAY_TLS_CA_FILE is used, and the system CA links are copied
// into the chroot.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { withRelaybox } from './fixture.ts';
import { PASSWORD, USER } from './harness.ts';
import { submit } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const RELAY = { username: 'relay-user@provider.test', password: 'relay-secret-in-the-image' };

test('container: AUTH to a smarthost whose certificate is verified', { timeout: 30 * 60_000 }, async (t) => {
  const ca = new TestCa();
  const smarthost = await Upstream.start({ certificate: ca.issue('smarthost.test'), requireAuth: true, credentials: RELAY, name: 'smarthost.test' });
  t.after(async () => {
    await smarthost.stop();
    ca.remove();
  });
  const box = await withRelaybox(t, {
    env: {
      RELAY_HOST: `[127.0.0.1]:${smarthost.port}`,
      RELAY_TLS_NAME: 'smarthost.test',
      RELAY_TLS_CA_FILE: '/var/lib/relaybox/relay-ca.pem',
      RELAY_USERNAME: RELAY.username,
      RELAY_PASSWORD: RELAY.password,
    },
    volumeFiles: { 'relay-ca.pem': readFileSync(ca.cert, 'utf8') },
  });
  if (!box) return;

  const final = await submit(box.ports, USER, ['bob@outside.example'], 'image-auth-upstream', { password: PASSWORD });
  assert.equal(final.code, 250, final.text);
  const delivered = await waitFor('the smarthost to get the message', 60_000, () => smarthost.messages.some((m) => m.data.includes('Subject: image-auth-upstream')) || undefined, 200).catch(() => false);
  const logs = await box.logs();
  assert.ok(delivered, `not delivered; the smarthost saw ${smarthost.commands.map((c) => c.line.split(' ')[0]).join(' ')}; logs:\n${logs.slice(-4000)}`);
  assert.deepEqual(smarthost.passwords, [{ user: RELAY.username, password: RELAY.password, tls: true }]);
  assert.match(logs, /Verified TLS connection established to 127\.0\.0\.1/);
  assert.ok(!logs.includes(RELAY.password), 'the relay password never appears in the logs');
  const links = await box.exec(['find', '/var/lib/relaybox/queue/etc/ssl/certs', '-type', 'f', '-name', '*.0', '-printf', 'link\n']);
  assert.equal(links.code, 0, links.output);
  const count = links.output.split('\n').filter((line) => line.trim() === 'link').length;
  assert.ok(count > 50, `CA links in the chroot: ${count}`);
});

// Forwarded mail and relay routes: mail taken unauthenticated on port 25 and forwarded by an alias to
// an outside address leaves with an SRS envelope sender at MAIL_HOSTNAME (so it passes SPF where it
// lands), never through a sender's relay route or with that route's credentials; a bounce to the SRS
// address goes back to the original sender, a forged one is refused at RCPT. Debian's postsrsd, given
// the same key, reverses what relaybox made: the format is the common one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { DOMAIN, freePort, hashOf, HOSTNAME, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { TestCa } from '../helpers/test-ca.ts';
import { Upstream } from '../helpers/upstream.ts';
import { socketmapQuery } from '../../src/protocol/socketmap.ts';

const ALICE = `alice@${DOMAIN}`;
const DAN = 'dan@partner.example';
const FORWARD = `fwd@${DOMAIN}`;
const FRIEND = 'friend@outside.example';
const ROUTE = { username: 'route-user', password: 'route-secret-2' };
const SRS = new RegExp(`^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=partner\\.example=someone@${HOSTNAME.replace(/\./g, '\\.')}$`);

/** One unauthenticated transaction on port 25; the reply to each step. */
async function inbound(box: Instance, from: string, to: string, subject: string) {
  const { client } = await SmtpClient.connect(box.ports.smtp);
  await client.ehlo('mx.partner.example');
  const result = await client.send(from, [to], message(from === '' ? 'MAILER-DAEMON@mx.partner.example' : from, to, subject));
  await client.quit();
  return result;
}

/** Every message delivered to alice's Maildir (new/). */
function aliceMessages(stateDir: string): string[] {
  const dir = `${stateDir}/mail/${DOMAIN}/alice/Maildir/new`;
  try {
    return readdirSync(dir).map((name) => readFileSync(`${dir}/${name}`, 'latin1'));
  } catch {
    return [];
  }
}

/** A lookup in postsrsd's TCP table (Postfix tcp_table protocol). */
function tcpTable(port: number, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`get ${key}\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) {
        socket.end();
        resolve(text.trim());
      }
    });
    socket.on('error', reject);
  });
}

describe('SRS for forwarded mail; routes only for authenticated mail', () => {
  let ca: TestCa;
  let smarthost: Upstream;
  let route: Upstream;
  let box: Instance;
  let srsAddress = '';
  before(async () => {
    ca = new TestCa();
    smarthost = await Upstream.start({ certificate: ca.issue('127.0.0.1'), name: 'smarthost.test' });
    route = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: ROUTE, name: 'route.test' });
    box = await Instance.start({
      MAIL_USERS: [ALICE, DAN].map((user) => `${user}:${hashOf(PASSWORD)}`).join('\n'),
      MAIL_ALIASES: `${FORWARD}:${FRIEND},${ALICE}`,
      RELAY_HOST: `[127.0.0.1]:${smarthost.port}`,
      RELAY_TLS_CA_FILE: ca.cert,
      RELAY_ROUTES: `@partner.example=[127.0.0.1]:${route.port} boss@${DOMAIN}=[127.0.0.1]:${route.port}`,
      RELAY_ROUTE_CREDENTIALS: `@partner.example ${ROUTE.username}:${ROUTE.password}\nboss@${DOMAIN} ${ROUTE.username}:${ROUTE.password}`,
    });
  });
  after(async () => {
    await box?.destroy();
    for (const upstream of [smarthost, route]) await upstream?.stop();
    ca?.remove();
  });

  test('the SRS key is made once, 0600; the start says SRS is on and why', () => {
    assert.ok(box.logs().some((l) => l.event === 'srs_on' && JSON.stringify(l.targets) === JSON.stringify([FRIEND])), 'srs_on names the outside target');
    const stat = statSync(`${box.stateDir}/srs-secret`);
    assert.equal(stat.mode & 0o777, 0o600);
    assert.ok(readFileSync(`${box.stateDir}/srs-secret`, 'utf8').trim().length >= 16);
  });

  test('forwarded from port 25: an SRS envelope sender, through RELAY_HOST, never the sender\'s route or its credentials', async () => {
    const { final } = await inbound(box, 'someone@partner.example', FORWARD, 'forwarded-unauthenticated');
    assert.equal(final.code, 250, final.text);
    const mail = await waitFor('the forward at RELAY_HOST', 30_000, () => smarthost.messages.find((m) => m.data.includes('Subject: forwarded-unauthenticated')), 100);
    assert.deepEqual(mail.to, [FRIEND]);
    assert.match(mail.from, SRS);
    assert.match(mail.data, /^From: <someone@partner\.example>$/m, 'the header From: is left alone');
    srsAddress = mail.from;
    const local = await waitFor("the local copy in alice's Maildir", 20_000, () => aliceMessages(box.stateDir).find((m) => m.includes('Subject: forwarded-unauthenticated')), 200);
    assert.match(local, /^Return-Path: <someone@partner\.example>\r?$/m, 'SRS is for mail that leaves: the local mailbox sees the original sender');
    assert.ok(!route.messages.some((m) => m.data.includes('Subject: forwarded-unauthenticated')), 'not through the route');
    assert.equal(route.sawAuth, false, 'the route credentials were never used');
    assert.deepEqual(route.passwords, []);
  });

  test('a routed sender of a local domain claimed unauthenticated on port 25: refused (5.7.1), the route never sees it', async () => {
    const { final } = await inbound(box, `boss@${DOMAIN}`, FORWARD, 'forged-local-routed');
    assert.ok(final.code >= 500 && /5\.7\.1/.test(final.text), `${final.code} ${final.text}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.ok(![...route.messages, ...smarthost.messages].some((m) => m.data.includes('Subject: forged-local-routed')));
    assert.equal(route.sawAuth, false);
  });

  test('an authenticated user of the routed domain still gets the route, its credentials and its own envelope sender', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission);
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(DAN, PASSWORD)).code, 235);
    const { final } = await client.send(DAN, [FRIEND], message(DAN, FRIEND, 'routed-authenticated'));
    assert.equal(final.code, 250, final.text);
    await client.quit();
    const mail = await waitFor('the route to receive it', 30_000, () => route.messages.find((m) => m.data.includes('Subject: routed-authenticated')), 100);
    assert.equal(mail.user, ROUTE.username);
    assert.equal(mail.from, DAN);
  });

  test('a bounce to the SRS address goes back to the original sender; a forged one is refused at RCPT', async () => {
    assert.ok(srsAddress, 'the forward test ran first');
    const { final } = await inbound(box, '', srsAddress, 'bounce-to-srs');
    assert.equal(final.code, 250, final.text);
    const bounce = await waitFor('the bounce at the original sender', 30_000, () => smarthost.messages.find((m) => m.data.includes('Subject: bounce-to-srs')), 100);
    assert.deepEqual(bounce.to, ['someone@partner.example']);
    assert.equal(bounce.from, '');
    const forged = srsAddress.replace(/^SRS0=(.)/, (_, c: string) => `SRS0=${c.toLowerCase() === 'a' ? 'B' : 'A'}`); // hashes compare case-insensitively
    const refused = await inbound(box, '', forged, 'forged-srs');
    assert.equal(refused.final.code, 550, refused.final.text);
    const otherDomain = srsAddress.replace('=partner.example=', '=elsewhere.example=');
    assert.equal((await inbound(box, '', otherDomain, 'tampered-srs')).final.code, 550, 'the domain is covered by the hash');
  });

  test("postsrsd with the same key reverses relaybox's address, and relaybox reverses postsrsd's", async () => {
    assert.ok(srsAddress);
    const [forwardPort, reversePort] = [await freePort(), await freePort()];
    const postsrsd: ChildProcess = spawn('postsrsd', ['-s', `${box.stateDir}/srs-secret`, '-d', HOSTNAME, '-l', '127.0.0.1', '-4', '-f', String(forwardPort), '-r', String(reversePort)], { stdio: 'ignore' });
    try {
      const reversed = await waitFor('postsrsd to answer', 10_000, () => tcpTable(reversePort, srsAddress).catch(() => undefined), 100);
      assert.equal(reversed, '200 someone@partner.example');
      const made = await tcpTable(forwardPort, 'carol@elsewhere.example');
      assert.match(made, /^200 SRS0=/);
      const socket = `${box.stateDir}/queue/private/relaybox-srs`;
      assert.equal(await socketmapQuery(socket, 'reverse', made.slice(4)), 'OK carol@elsewhere.example');
      // SRS1, for a sender another forwarder already rewrote: both directions agree too.
      const theirs = 'SRS0=AbCd=XY=origin.example=alice@forwarder.example';
      const ours = (await socketmapQuery(socket, 'forward', theirs)).slice(3);
      assert.match(ours, /^SRS1=/);
      assert.equal(await tcpTable(reversePort, ours), `200 ${theirs}`);
      const postsrsdSrs1 = await tcpTable(forwardPort, theirs);
      assert.match(postsrsdSrs1, /^200 SRS1=/);
      assert.equal(await socketmapQuery(socket, 'reverse', postsrsdSrs1.slice(4)), `OK ${theirs}`);
    } finally {
      postsrsd.kill();
    }
  });
});

describe('TRUSTED_NETWORKS keep their routes on port 25 while SRS is on', () => {
  let ca: TestCa;
  let smarthost: Upstream;
  let route: Upstream;
  let box: Instance;
  before(async () => {
    ca = new TestCa();
    smarthost = await Upstream.start({ certificate: ca.issue('127.0.0.1'), name: 'smarthost.test' });
    route = await Upstream.start({ certificate: ca.issue('127.0.0.1'), requireAuth: true, credentials: ROUTE, name: 'route.test' });
    box = await Instance.start({
      TRUSTED_NETWORKS: '127.0.0.1/32',
      MAIL_ALIASES: `${FORWARD}:${FRIEND}`,
      RELAY_HOST: `[127.0.0.1]:${smarthost.port}`,
      RELAY_TLS_CA_FILE: ca.cert,
      RELAY_ROUTES: `@${DOMAIN}=[127.0.0.1]:${route.port}`,
      RELAY_ROUTE_CREDENTIALS: `@${DOMAIN} ${ROUTE.username}:${ROUTE.password}`,
    });
  });
  after(async () => {
    await box?.destroy();
    for (const upstream of [smarthost, route]) await upstream?.stop();
    ca?.remove();
  });

  test('a trusted client (swaks) sending as a local-domain address: its own sender, through the route, to the outside and to a forward', async () => {
    for (const [to, subject] of [[FRIEND, 'trusted-direct'], [FORWARD, 'trusted-forward']] as const) {
      await promisify(execFile)('swaks', ['--server', `127.0.0.1:${box.ports.smtp}`, '--ehlo', 'app.internal.test', '--from', ALICE, '--to', to, '--header', `Subject: ${subject}`, '--body', 'from a trusted network'], { timeout: 20_000 });
      const mail = await waitFor(`${subject} at the route`, 30_000, () => route.messages.find((m) => m.data.includes(`Subject: ${subject}`)), 100);
      assert.equal(mail.from, ALICE, 'never SRS-rewritten: a sender in a local domain');
      assert.equal(mail.user, ROUTE.username);
      assert.deepEqual(mail.to, [FRIEND]);
    }
    assert.ok(!smarthost.messages.some((m) => /Subject: trusted-/.test(m.data)));
  });
});

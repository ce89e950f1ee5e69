// What mail looks like at the protocol's edges (issue 20): no SMTPUTF8 promised that Dovecot cannot
// keep, no local sender on port 25 without AUTH, the submitter's address kept private, Message-ID
// and Date for every submitter, TLS on 25 as opportunistic as RFC 7435 wants, and no local socket
// another local user can use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { SmtpClient, authenticated, message } from '../helpers/smtp.ts';
import { msmtpSend } from '../helpers/msmtp.ts';

/** Not one of the instance's own addresses (BIND_ADDRESS=127.0.0.1): Postfix treats it as a remote client. */
const REMOTE = '127.0.0.2';
const TRUSTED = '127.0.0.3';

function mailbox(box: Instance, user: string): string[] {
  const dir = `${box.stateDir}/mail/${DOMAIN}/${user}/Maildir/new`;
  return existsSync(dir) ? readdirSync(dir).map((name) => readFileSync(`${dir}/${name}`, 'utf8')) : [];
}

async function session(port: number, localAddress = REMOTE) {
  const { client } = await SmtpClient.connect(port, { localAddress });
  await client.ehlo();
  return client;
}

async function submitter(box: Instance) {
  const { client, auth } = await authenticated(box.ports, `alice@${DOMAIN}`, { localAddress: REMOTE });
  assert.equal(auth.code, 235, auth.text);
  return client;
}

/** The copy the upstream (smtp-sink) received that contains `marker`. */
async function upstreamCopy(box: Instance, marker: string): Promise<string> {
  return waitFor(`${marker} upstream`, 20_000, () => box.sink.messages().find((m) => m.includes(marker)), 100);
}

const headerBlock = (copy: string) => copy.slice(0, copy.search(/\r?\n\r?\n/));

describe('mail correctness', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ TRUSTED_NETWORKS: `${TRUSTED}/32` });
  });
  after(async () => box.destroy());

  describe('SMTPUTF8 is not promised, and UTF-8 where it can go is delivered', () => {
    test('no listener advertises SMTPUTF8, and MAIL with SMTPUTF8 is refused, not accepted', async () => {
      for (const port of [box.ports.smtp, box.ports.submission]) {
        const client = await session(port);
        const ehlo = await client.ehlo();
        assert.doesNotMatch(ehlo.text, /SMTPUTF8/i, `port ${port} advertises SMTPUTF8`);
        const mail = await client.cmd('MAIL FROM:<someone@outside.example> SMTPUTF8');
        assert.ok(mail.code >= 500, `MAIL ... SMTPUTF8 on ${port}: ${mail.code} ${mail.text}`);
        await client.quit();
      }
    });

    test('a UTF-8 local part is refused at RCPT/MAIL (5.6.7) on 25 and 587, never taken and bounced', async () => {
      const inbound = await session(box.ports.smtp);
      assert.equal((await inbound.cmd('MAIL FROM:<someone@outside.example>')).code, 250);
      const rcpt = await inbound.cmd(`RCPT TO:<jörg@${DOMAIN}>`);
      assert.equal(rcpt.code, 553, rcpt.text);
      assert.match(rcpt.text, /5\.6\.7/);
      await inbound.cmd('RSET');
      const sender = await inbound.cmd('MAIL FROM:<jörg@outside.example>');
      assert.equal(sender.code, 553, sender.text);
      await inbound.quit();
      const submission = await submitter(box);
      assert.equal((await submission.cmd(`MAIL FROM:<alice@${DOMAIN}>`)).code, 250);
      const outside = await submission.cmd('RCPT TO:<jörg@outside.example>');
      assert.equal(outside.code, 553, outside.text);
      await submission.quit();
    });

    test('a raw UTF-8 Subject reaches the mailbox and the upstream intact', async () => {
      const subject = 'Grüße aus Köln ✓ utf8-local';
      const client = await session(box.ports.smtp);
      const local = await client.send('someone@outside.example', [`bob@${DOMAIN}`], message('someone@outside.example', `bob@${DOMAIN}`, subject));
      assert.equal(local.final.code, 250, local.final.text);
      await client.quit();
      const delivered = await waitFor('the UTF-8 message in bob\'s mailbox', 20_000, () => mailbox(box, 'bob').find((m) => m.includes('utf8-local')), 100);
      assert.ok(delivered.includes(`Subject: ${subject}`), delivered);

      const submission = await submitter(box);
      const out = await submission.send(`alice@${DOMAIN}`, ['friend@outside.example'], message(`alice@${DOMAIN}`, 'friend@outside.example', 'Grüße ✓ utf8-upstream'));
      assert.equal(out.final.code, 250, out.final.text);
      await submission.quit();
      const copy = Buffer.from(await upstreamCopy(box, 'utf8-upstream'), 'latin1').toString('utf8');
      assert.match(copy, /Subject: Grüße ✓ utf8-upstream/);
    });
  });

  describe('port 25 and local senders', () => {
    test('an unauthenticated sender in a local domain or the host name is refused with 5.7.1', async () => {
      for (const sender of [`alice@${DOMAIN}`, `ALICE@${DOMAIN.toUpperCase()}`, `nobody@${HOSTNAME}`]) {
        const client = await session(box.ports.smtp);
        const reply = await client.cmd(`MAIL FROM:<${sender}>`);
        const rcpt = reply.code === 250 ? await client.cmd(`RCPT TO:<bob@${DOMAIN}>`) : reply;
        assert.equal(rcpt.code, 550, `${sender}: ${rcpt.code} ${rcpt.text}`);
        assert.match(rcpt.text, /5\.7\.1/);
        await client.quit();
      }
    });

    test('outside senders, the null sender and TRUSTED_NETWORKS keep working', async () => {
      for (const [sender, source, subject] of [['someone@outside.example', REMOTE, 'outside-ok'], ['', REMOTE, 'null-ok'], [`alice@${DOMAIN}`, TRUSTED, 'trusted-ok']] as const) {
        const client = await session(box.ports.smtp, source);
        const result = await client.send(sender, [`bob@${DOMAIN}`], message(sender || 'mailer-daemon@outside.example', `bob@${DOMAIN}`, subject));
        assert.equal(result.final.code, 250, `${subject}: ${result.final.text}`);
        await client.quit();
      }
      await waitFor('the three messages in bob\'s mailbox', 20_000, () => ['outside-ok', 'null-ok', 'trusted-ok'].every((s) => mailbox(box, 'bob').some((m) => m.includes(s))) || undefined, 100);
    });
  });

  describe('what the upstream learns about the submitter', () => {
    test('msmtp from another address: no client address, reverse name or login upstream; relaybox\'s own hop kept', async () => {
      const text = `From: alice@${DOMAIN}\r\nTo: friend@outside.example\r\nSubject: private-msmtp\r\nX-Originating-IP: [${REMOTE}]\r\n\r\nNothing about me.\r\n`;
      msmtpSend({ port: box.ports.submission, user: `alice@${DOMAIN}`, password: PASSWORD, from: `alice@${DOMAIN}`, to: ['friend@outside.example'], sourceIp: REMOTE, message: text });
      const headers = headerBlock(await upstreamCopy(box, 'private-msmtp'));
      assert.ok(!headers.includes(REMOTE), `the submitter's address went upstream:\n${headers}`);
      assert.doesNotMatch(headers, /Authenticated sender|localhost|X-Originating-IP/i, headers);
      assert.match(headers, new RegExp(`^Received: by ${HOSTNAME.replaceAll('.', '\\.')} \\(Postfix\\) with ESMTPSA id \\w+`, 'm'), headers);
    });

    test('a submitter whose client adds neither gets Message-ID and Date (RFC 6409 8.3)', async () => {
      const client = await submitter(box);
      const bare = `From: alice@${DOMAIN}\r\nTo: friend@outside.example\r\nSubject: no-message-id\r\n\r\nbare\r\n`;
      assert.equal((await client.send(`alice@${DOMAIN}`, ['friend@outside.example'], bare)).final.code, 250);
      await client.quit();
      const headers = headerBlock(await upstreamCopy(box, 'no-message-id'));
      assert.match(headers, new RegExp(`^Message-I[dD]: <[^>]+@${HOSTNAME.replaceAll('.', '\\.')}>`, 'm'), headers);
      assert.match(headers, /^Date: \w{3}, +\d+ \w{3} \d{4} /m, headers);
    });
  });

  describe('TLS on port 25 is opportunistic, on submission strict', () => {
    const handshake = (port: number, starttls: 'smtp') =>
      spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-starttls', starttls, '-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA', '-brief'], { input: 'QUIT\r\n', encoding: 'utf8', timeout: 15_000 });
    test('an old TLS 1.2 client with a CBC-SHA1 suite gets TLS on 25 and is refused on 587', () => {
      const inbound = handshake(box.ports.smtp, 'smtp');
      assert.match(inbound.stdout + inbound.stderr, /CONNECTION ESTABLISHED[\s\S]*Ciphersuite: ECDHE-(ECDSA|RSA)-AES128-SHA/, inbound.stderr);
      const submission = handshake(box.ports.submission, 'smtp');
      assert.doesNotMatch(submission.stdout + submission.stderr, /CONNECTION ESTABLISHED/, submission.stderr);
    });
  });

  describe('local sockets', () => {
    test('no unix socket under STATE_DIR accepts a connection from another local user', () => {
      const probe = `
import os, socket, stat, sys
for root, dirs, files in os.walk(sys.argv[1]):
    for name in files + dirs:
        path = os.path.join(root, name)
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode): continue
        except OSError: continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path); print(path)
        except OSError: pass
`;
      const sockets = execFileSync('find', [box.stateDir, '-type', 's'], { encoding: 'utf8' }).trim().split('\n');
      assert.ok(sockets.length >= 10, `expected the daemons' sockets under ${box.stateDir}, found ${sockets.length}`);
      const open = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/usr/bin/python3', '-c', probe, box.stateDir], { encoding: 'utf8' });
      assert.equal(open.status, 0, open.stderr);
      assert.equal(open.stdout.trim(), '', `sockets another user could use:\n${open.stdout}`);
    });

  });
});

describe('SUBMITTER_PRIVACY=off', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ SUBMITTER_PRIVACY: 'off' });
  });
  after(async () => box.destroy());

  test('the full Received line with the login goes upstream', async () => {
    const text = `From: alice@${DOMAIN}\r\nTo: friend@outside.example\r\nSubject: public-msmtp\r\n\r\nx\r\n`;
    msmtpSend({ port: box.ports.submission, user: `alice@${DOMAIN}`, password: PASSWORD, from: `alice@${DOMAIN}`, to: ['friend@outside.example'], sourceIp: REMOTE, message: text });
    const headers = headerBlock(await upstreamCopy(box, 'public-msmtp'));
    assert.ok(headers.includes(`[${REMOTE}]`), headers);
    assert.match(headers, new RegExp(`Authenticated sender: alice@${DOMAIN.replaceAll('.', '\\.')}`), headers);
  });
});

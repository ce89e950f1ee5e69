// The open-relay and authentication-abuse battery: every known trick on ports 25, 587 and 465,
// each asserting the exact reply and that nothing reached the upstream sink.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOMAIN, Instance, PASSWORD, ROOT, waitFor } from '../helpers/instance.ts';
import { parseReceived } from '../helpers/sink.ts';
import { SmtpClient, authenticated, message, type Reply } from '../helpers/smtp.ts';

const ALICE = `alice@${DOMAIN}`;
const b64 = (text: string) => Buffer.from(text).toString('base64');

type Port = 'smtp' | 'submission' | 'submissions';
interface Expect {
  code: number;
  enhanced?: string;
}

let box: Instance;
let nextSource = 10;

/** Each session comes from its own loopback address, so Dovecot's per-address auth penalty never piles up. */
async function open(port: Port, options: { auth?: boolean; starttls?: boolean } = {}): Promise<SmtpClient> {
  const { client, greeting } = await SmtpClient.connect(box.ports[port], { tls: port === 'submissions', localAddress: `127.0.0.${nextSource++}` });
  assert.equal(greeting.code, 220, greeting.text);
  await client.ehlo();
  if (port === 'submission' || options.starttls) await client.starttls();
  if (options.auth) assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
  return client;
}

function check(reply: Reply, expected: Expect): void {
  assert.equal(reply.code, expected.code, `${reply.code} ${reply.text}`);
  if (expected.enhanced) assert.equal(reply.enhanced, expected.enhanced, reply.text);
}

const RELAY_DENIED = { code: 554, enhanced: '5.7.1' };

// Recipient tricks that must never relay to outside.example (or anywhere).
const RELAY_TRICKS: Array<{ name: string; rcpt: string; on25?: Expect }> = [
  { name: 'percent hack', rcpt: `user%outside.example@${DOMAIN}` },
  { name: 'source route', rcpt: `@${DOMAIN}:user@outside.example` },
  { name: 'bang path', rcpt: `outside.example!user@${DOMAIN}` },
  { name: 'quoted local part', rcpt: `"user@outside.example"@${DOMAIN}` },
  { name: 'IP literal', rcpt: 'user@[192.0.2.1]' },
  { name: 'loopback IP literal', rcpt: 'user@[127.0.0.1]', on25: { code: 550, enhanced: '5.1.1' } },
  { name: 'trailing dot', rcpt: 'user@outside.example.' },
  { name: 'mixed case domain', rcpt: 'user@OutSide.EXAMPLE' },
  { name: 'local domain as a subdomain suffix', rcpt: `user@${DOMAIN}.evil.example` },
  { name: 'double @', rcpt: `user@evil.example@${DOMAIN}` },
  { name: 'localhost', rcpt: 'user@localhost' },
];

describe('abuse battery', () => {
  before(async () => {
    box = await Instance.start({ MESSAGE_SIZE_LIMIT: '20000', RECIPIENT_LIMIT: '3', AUTH_FAILURE_DELAY: '0', AUTH_BAN_THRESHOLD: '0' });
  });
  after(async () => {
    await box.destroy();
  });

  /**
   * Runs a case and asserts that the sink received nothing during it: counted once Postfix's queue is
   * empty, so a message that was accepted after all has been delivered (or is found still queued).
   */
  let cases = 0;
  function nothingRelayed(name: string, run: () => Promise<void>): void {
    cases += 1;
    test(name, async () => {
      const before = box.sink.messages().length;
      await run();
      await box.waitQueueEmpty();
      assert.equal(box.sink.messages().length, before, 'something reached the upstream');
    });
  }

  for (const port of ['smtp', 'submission', 'submissions'] as const) {
    for (const trick of RELAY_TRICKS) {
      const expected = port === 'smtp' ? (trick.on25 ?? RELAY_DENIED) : RELAY_DENIED;
      nothingRelayed(`${port} without AUTH: ${trick.name} <${trick.rcpt}> -> ${expected.code} ${expected.enhanced}`, async () => {
        const client = await open(port);
        check(await client.cmd('MAIL FROM:<stranger@outside.example>'), { code: 250 });
        check(await client.cmd(`RCPT TO:<${trick.rcpt}>`), expected);
        await client.quit();
      });
    }
    nothingRelayed(`${port} without AUTH: null sender to an outside recipient -> 554 5.7.1`, async () => {
      const client = await open(port);
      check(await client.cmd('MAIL FROM:<>'), { code: 250 });
      check(await client.cmd('RCPT TO:<user@outside.example>'), RELAY_DENIED);
      await client.quit();
    });
    // Port 25 refuses a local sender without AUTH at MAIL already (README "Mail correctness").
    nothingRelayed(`${port} without AUTH: forged local sender to an outside recipient -> ${port === 'smtp' ? '550 5.7.1 at MAIL' : '554 5.7.1'}`, async () => {
      const client = await open(port);
      if (port === 'smtp') {
        check(await client.cmd(`MAIL FROM:<${ALICE}>`), { code: 550, enhanced: '5.7.1' });
      } else {
        check(await client.cmd(`MAIL FROM:<${ALICE}>`), { code: 250 });
        check(await client.cmd('RCPT TO:<user@outside.example>'), RELAY_DENIED);
      }
      await client.quit();
    });
  }

  nothingRelayed('submission without AUTH: even a local recipient is refused -> 554 5.7.1', async () => {
    const client = await open('submission');
    check(await client.cmd('MAIL FROM:<stranger@outside.example>'), { code: 250 });
    check(await client.cmd(`RCPT TO:<bob@${DOMAIN}>`), RELAY_DENIED);
    await client.quit();
  });

  // AUTH abuse
  nothingRelayed('587: AUTH before STARTTLS -> 530 5.7.0, and MAIL too', async () => {
    const { client } = await SmtpClient.connect(box.ports.submission, { localAddress: `127.0.0.${nextSource++}` });
    await client.ehlo();
    check(await client.authPlain(ALICE, PASSWORD), { code: 530, enhanced: '5.7.0' });
    check(await client.cmd('MAIL FROM:<stranger@outside.example>'), { code: 530, enhanced: '5.7.0' });
    await client.quit();
  });
  nothingRelayed('25: AUTH is not enabled -> 503 5.5.1', async () => {
    const client = await open('smtp');
    check(await client.authPlain(ALICE, PASSWORD), { code: 503, enhanced: '5.5.1' });
    await client.quit();
  });
  nothingRelayed('25 after STARTTLS: AUTH is still not enabled -> 503 5.5.1', async () => {
    const client = await open('smtp', { starttls: true });
    check(await client.authPlain(ALICE, PASSWORD), { code: 503, enhanced: '5.5.1' });
    await client.quit();
  });
  for (const port of ['submission', 'submissions'] as const) {
    nothingRelayed(`${port}: malformed base64 -> 535 5.7.8`, async () => {
      const client = await open(port);
      check(await client.cmd('AUTH PLAIN !!!not-base64!!!'), { code: 535, enhanced: '5.7.8' });
      await client.quit();
    });
    nothingRelayed(`${port}: authzid different from authcid -> 535 5.7.8`, async () => {
      const client = await open(port);
      check(await client.cmd(`AUTH PLAIN ${b64(`bob@${DOMAIN}\0${ALICE}\0${PASSWORD}`)}`), { code: 535, enhanced: '5.7.8' });
      await client.quit();
    });
    nothingRelayed(`${port}: empty password -> 535 5.7.8`, async () => {
      const client = await open(port);
      check(await client.cmd(`AUTH PLAIN ${b64(`\0${ALICE}\0`)}`), { code: 535, enhanced: '5.7.8' });
      await client.quit();
    });
    nothingRelayed(`${port}: over-long credentials -> 535 5.7.8`, async () => {
      const client = await open(port);
      check(await client.cmd(`AUTH PLAIN ${b64(`\0${ALICE}\0${'x'.repeat(1400)}`)}`), { code: 535, enhanced: '5.7.8' });
      await client.quit();
    });
    nothingRelayed(`${port}: a 20 kB AUTH line -> 535 5.7.8`, async () => {
      const client = await open(port);
      check(await client.cmd(`AUTH PLAIN ${'A'.repeat(20_000)}`), { code: 535, enhanced: '5.7.8' });
      client.destroy();
    });
    nothingRelayed(`${port}: unknown mechanism -> 535 5.7.8`, async () => {
      const client = await open(port);
      check(await client.cmd('AUTH CRAM-MD5'), { code: 535, enhanced: '5.7.8' });
      await client.quit();
    });
  }
  nothingRelayed('587: AUTH twice -> 503 5.5.1', async () => {
    const client = await open('submission', { auth: true });
    check(await client.authPlain(ALICE, PASSWORD), { code: 503, enhanced: '5.5.1' });
    await client.quit();
  });
  nothingRelayed('587: AUTH after MAIL -> 503 5.5.1', async () => {
    const client = await open('submission');
    check(await client.cmd(`MAIL FROM:<${ALICE}>`), { code: 250 });
    check(await client.authPlain(ALICE, PASSWORD), { code: 503, enhanced: '5.5.1' });
    await client.quit();
  });
  nothingRelayed('587: a second AUTH after a failure fails again with a wrong password -> 535 5.7.8', async () => {
    const client = await open('submission');
    check(await client.authPlain(ALICE, 'wrong-1'), { code: 535, enhanced: '5.7.8' });
    check(await client.authPlain(ALICE, 'wrong-2'), { code: 535, enhanced: '5.7.8' });
    check(await client.cmd('MAIL FROM:<stranger@outside.example>'), { code: 250 });
    check(await client.cmd('RCPT TO:<user@outside.example>'), RELAY_DENIED);
    await client.quit();
  });
  nothingRelayed('587: AUTH LOGIN cancelled with * -> 501 5.7.0', async () => {
    const client = await open('submission');
    check(await client.cmd('AUTH LOGIN'), { code: 334 });
    check(await client.cmd('*'), { code: 501, enhanced: '5.7.0' });
    await client.quit();
  });
  nothingRelayed('587: unknown user -> 535 5.7.8', async () => {
    const client = await open('submission');
    check(await client.authPlain(`mallory@${DOMAIN}`, PASSWORD), { code: 535, enhanced: '5.7.8' });
    await client.quit();
  });

  // Authenticated abuse
  for (const port of ['submission', 'submissions'] as const) {
    nothingRelayed(`${port} with AUTH: another user's address as sender -> 553 5.7.1`, async () => {
      const client = await open(port, { auth: true });
      const { final } = await client.send(`bob@${DOMAIN}`, ['user@outside.example'], message(`bob@${DOMAIN}`, 'user@outside.example', 'forged'));
      check(final, { code: 553, enhanced: '5.7.1' });
      await client.quit();
    });
    nothingRelayed(`${port} with AUTH: an outside address as sender -> 553 5.7.1`, async () => {
      const client = await open(port, { auth: true });
      const { final } = await client.send('ceo@outside.example', ['user@outside.example'], message('ceo@outside.example', 'user@outside.example', 'spoofed'));
      check(final, { code: 553, enhanced: '5.7.1' });
      await client.quit();
    });
  }
  nothingRelayed('587 with AUTH: more than RECIPIENT_LIMIT recipients -> 452 4.5.3', async () => {
    const client = await open('submission', { auth: true });
    check(await client.cmd(`MAIL FROM:<${ALICE}>`), { code: 250 });
    for (const n of [1, 2, 3]) check(await client.cmd(`RCPT TO:<r${n}@outside.example>`), { code: 250 });
    check(await client.cmd('RCPT TO:<r4@outside.example>'), { code: 452, enhanced: '4.5.3' });
    check(await client.cmd('RSET'), { code: 250 });
    await client.quit();
  });
  nothingRelayed('587 with AUTH: SIZE= over MESSAGE_SIZE_LIMIT -> 552 5.3.4', async () => {
    const client = await open('submission', { auth: true });
    check(await client.cmd(`MAIL FROM:<${ALICE}> SIZE=50000`), { code: 552, enhanced: '5.3.4' });
    await client.quit();
  });
  nothingRelayed('587 with AUTH: a message over MESSAGE_SIZE_LIMIT -> 552 5.3.4', async () => {
    const client = await open('submission', { auth: true });
    const { final } = await client.send(ALICE, ['user@outside.example'], message(ALICE, 'user@outside.example', 'too-big', 'x'.repeat(76).concat('\r\n').repeat(400)));
    check(final, { code: 552, enhanced: '5.3.4' });
    await client.quit();
  });
  for (const port of ['smtp', 'submission'] as const) {
    nothingRelayed(`${port}: commands pipelined before the greeting -> 554 5.5.0`, async () => {
      const { connect } = await import('node:net');
      const socket = connect({ port: box.ports[port], host: '127.0.0.1', localAddress: `127.0.0.${nextSource++}` });
      socket.write(`EHLO early.example\r\nMAIL FROM:<stranger@outside.example>\r\nRCPT TO:<bob@${DOMAIN}>\r\nDATA\r\n`);
      let received = '';
      socket.on('data', (chunk) => (received += chunk));
      await waitFor('the synchronization error', 5000, () => (/\r\n$/.test(received) && /^554 /m.test(received) ? true : undefined));
      assert.match(received, /^554 5\.5\.0 Error: SMTP protocol synchronization/m);
      assert.doesNotMatch(received, /^250 2\.1\.[05]/m);
      socket.destroy();
    });
  }

  describe('SMTP smuggling', () => {
    // A second transaction hidden behind a non-standard end-of-data must never become a message.
    const variants: Array<[string, string]> = [
      ['<LF>.<CR><LF>', '\n.\r\n'],
      ['<CR>.<LF>', '\r.\n'],
      ['<LF>.<LF>', '\n.\n'],
      ['<CR><LF>.<LF>', '\r\n.\n'],
      ['<CR>.<CR><LF>', '\r.\r\n'],
    ];
    for (const [name, ending] of variants) {
      test(`${name} does not end the message: one 250, one message to the carrier's recipient only, the smuggled commands in its body`, async () => {
        const before = box.sink.messages().length;
        const client = await open('submission', { auth: true });
        check(await client.cmd(`MAIL FROM:<${ALICE}>`), { code: 250 });
        check(await client.cmd('RCPT TO:<carrier@outside.example>'), { code: 250 });
        check(await client.cmd('DATA'), { code: 354 });
        const marker = `carrier-${name.replace(/\W+/g, '')}-${Date.now()}`;
        client.write(
          `Subject: ${marker}\r\n\r\nhello\r\n${ending}MAIL FROM:<${ALICE}>\r\nRCPT TO:<smuggled@outside.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n`,
        );
        // Every reply the server sends until it falls silent: one 250 for the one message, nothing more
        // (a smuggled transaction would add 250 250 354 250).
        const replies = await readUntilIdle(client);
        assert.deepEqual(replies.map((r) => r.code), [250], `replies after the payload: ${replies.map((r) => `${r.code} ${r.text}`).join(' | ')}`);
        check((await client.cmd('QUIT')), { code: 221 });
        client.destroy();
        await box.waitQueueEmpty();
        const fresh = box.sink.messages().slice(before).map(parseReceived);
        assert.equal(fresh.length, 1, `${fresh.length} messages reached the upstream`);
        const [carrier] = fresh as [ReturnType<typeof parseReceived>];
        assert.deepEqual(carrier.recipients, ['carrier@outside.example']);
        assert.ok(carrier.text.includes(`Subject: ${marker}`), carrier.text);
        const body = carrier.text.slice(carrier.text.indexOf('\n\n', carrier.text.indexOf(`Subject: ${marker}`)));
        assert.match(body, /^RCPT TO:<smuggled@outside\.example>\r?$/m, 'the smuggled commands are data of the one message');
        assert.match(body, /^Subject: smuggled\r?$/m);
      });
    }

    test('a bare <LF> inside the message is only a line break: one message arrives, intact', async () => {
      const before = box.sink.messages().length;
      const client = await open('submission', { auth: true });
      check(await client.cmd(`MAIL FROM:<${ALICE}>`), { code: 250 });
      check(await client.cmd('RCPT TO:<someone@outside.example>'), { code: 250 });
      check(await client.cmd('DATA'), { code: 354 });
      client.write('Subject: bare lf\r\n\r\nline one\nline two\r\n.\r\n');
      check(await client.read(), { code: 250, enhanced: '2.0.0' });
      await client.quit();
      await box.waitQueueEmpty();
      const fresh = box.sink.messages().slice(before);
      assert.equal(fresh.length, 1);
      assert.match(fresh[0]!, /Subject: bare lf/);
      assert.match(fresh[0]!, /line one\r?\nline two/);
    });
  });

  test('the README counts the cases of the open-relay battery', () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const claimed = Number(/\*\*No open relay\*\*: (\d+) cases/.exec(readme)?.[1]);
    assert.equal(claimed, cases, `README says ${claimed} cases, abuse.test.ts has ${cases}`);
  });
});

/** The first reply, then every further one until none arrives for `idleMs`; a closed connection or a partial reply is an error. */
async function readUntilIdle(client: SmtpClient, idleMs = 2000): Promise<Reply[]> {
  const replies: Reply[] = [await client.read()];
  for (;;) {
    try {
      replies.push(await client.read(idleMs));
    } catch (error) {
      if (!client.isClosed && /^no a complete reply within \d+ ms; got ""$/.test((error as Error).message)) return replies;
      throw error;
    }
  }
}

describe('AUTH_RATE_LIMIT', () => {
  test('a client past AUTH_RATE_LIMIT AUTH commands a minute is refused with 450 4.7.1, right password or not; another address is not', async () => {
    const limited = await Instance.start({ AUTH_RATE_LIMIT: '3', AUTH_FAILURE_DELAY: '0', AUTH_BAN_THRESHOLD: '0' });
    try {
      const codes: number[] = [];
      let last: Reply | undefined;
      for (let i = 0; i < 4; i++) {
        const { client, auth } = await authenticated(limited.ports, ALICE, { localAddress: '127.0.0.133' });
        await client.quit();
        codes.push(auth.code);
        last = auth;
      }
      assert.deepEqual(codes, [235, 235, 235, 450], last?.text);
      assert.equal(last?.enhanced, '4.7.1');
      assert.match(last?.text ?? '', /too many AUTH commands/i);
      assert.equal((await authenticated(limited.ports, ALICE, { localAddress: '127.0.0.134' }).then(async ({ client, auth }) => (await client.quit(), auth))).code, 235, 'counted per client address');
    } finally {
      await limited.destroy();
    }
  });
});

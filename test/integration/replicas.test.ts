// relaybox as replicas (README, "More than one machine"), Kubernetes' topology simulated on one host:
// three relay replicas (ROLE=relay), one mailbox replica (ROLE=mailbox) and a redis-server, each on
// loopback ports of its own, with the certificate, DKIM key, accounts and handoff password from files
// as Secrets would give them. Bans and sending counters are shared through Redis; mail for the local
// domain crosses the LMTP hop (STARTTLS, the certificate pinned) into the mailbox replica; a stopping
// relay hands its queue to a peer or, when none answers, keeps it and delivers it when it returns.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, freePort, runCli, waitFor } from '../helpers/instance.ts';
import { gauge } from '../helpers/metrics.ts';
import { queueCounts, queuedCount } from '../helpers/queue.ts';
import { HANDOFF_PASSWORD, Topology } from '../helpers/replicas.ts';
import { SmtpClient, authenticated, message, submit as submitAs, type Reply } from '../helpers/smtp.ts';
import { Upstream } from '../helpers/upstream.ts';
import { HANDOFF_ACCOUNT } from '../../src/config/areas/replicas.ts';
import { ImapSession } from '../../src/protocol/session.ts';

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const CAROL = `carol@${DOMAIN}`;
const DAVE = `dave@${DOMAIN}`;
const ATTACKER = '127.0.0.77';
const BYSTANDER = '127.0.0.78';

/** One authenticated message through a relay's 587; the reply that ended it. */
const submit = (relay: Instance, user: string, to: string[], subject: string, localAddress?: string): Promise<Reply> => submitAs(relay.ports, user, to, subject, localAddress ? { localAddress } : {});

async function inboxOf(box: Instance, user: string, localAddress?: string): Promise<{ status: string; messages: string[] }> {
  const { client } = await ImapSession.connect(box.ports.imaps, { tls: true, timeoutMs: 30_000, ...(localAddress ? { localAddress } : {}) });
  try {
    const login = await client.login(user, PASSWORD);
    return { status: login.status, messages: login.status === 'OK' ? await client.inbox() : [] };
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** A gauge of one replica (a missing series fails); the body is kept for the secrets check. */
async function metric(box: Instance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(box.url('/metrics'))).text();
  box.bodies.push(text);
  return gauge(text, name, labels);
}

/** Every complete queue file of a replica, hold/ included (a held copy is not delivered, nor gone). */
const queued = (box: Instance) => queuedCount(`${box.stateDir}/queue`);
const deferred = (box: Instance) => queueCounts(`${box.stateDir}/queue`).deferred;
/** How a TCP connection to the port ends: 'connected', or the error code (ECONNREFUSED when nothing listens). */
const dial = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
const flush = (box: Instance) => execFileSync('postqueue', ['-c', `${box.stateDir}/postfix`, '-f']);
const subjectsAtSink = (topology: Topology, prefix: string) => topology.sink.messages().map((m) => /^Subject: (\S+)/m.exec(m)?.[1] ?? '').filter((s) => s.startsWith(prefix));
const events = (box: Instance, event: string) => box.logs().filter((l) => l.event === event);

describe('relay replicas, a mailbox replica and Redis', () => {
  let topology: Topology;
  before(async () => {
    topology = await Topology.start({
      relayEnv: { AUTH_BAN_THRESHOLD: '3', AUTH_FAILURE_DELAY: '0', SEND_LIMITS: `${CAROL}:3/h`, SEND_SUSPEND_THRESHOLD: '0', DRAIN_SECONDS: '10', HANDOFF_SECONDS: '15' },
      mailboxEnv: { AUTH_BAN_THRESHOLD: '3', AUTH_FAILURE_DELAY: '0' },
    });
  });
  after(async () => {
    await topology?.destroy();
  });

  test('mail for the local domain submitted to any relay, or sent to its port 25, lands in the mailbox replica and is read over IMAP there', async () => {
    const { relays, mailbox } = topology;
    for (const [i, relay] of relays.entries()) assert.equal((await submit(relay, ALICE, [BOB], `local-via-relay-${i}`)).code, 250);
    const { client } = await SmtpClient.connect(relays[2]!.ports.smtp);
    await client.ehlo();
    assert.equal((await client.send('stranger@outside.example', [BOB], message('stranger@outside.example', BOB, 'local-from-outside'))).final.code, 250);
    await client.quit();

    const wanted = [...relays.map((_, i) => `local-via-relay-${i}`), 'local-from-outside'];
    const inbox = await waitFor("every message in bob's INBOX on the mailbox replica", 30_000, async () => {
      const { messages } = await inboxOf(mailbox, BOB);
      return wanted.every((subject) => messages.some((m) => m.includes(`Subject: ${subject}`))) ? messages : undefined;
    }, 300);
    // The LMTP hop is encrypted (Dovecot's Received header says LMTPS), and the relays signed.
    for (const subject of wanted.slice(0, 3)) {
      const mail = inbox.find((m) => m.includes(`Subject: ${subject}`))!;
      assert.match(mail, /with LMTPS/, `${subject} crossed the LMTP hop in clear`);
      assert.match(mail, /DKIM-Signature: .*d=relaybox\.test/s);
    }
    const maildir = `${mailbox.stateDir}/mail/${DOMAIN}/bob/Maildir`;
    assert.ok(readdirSync(`${maildir}/cur`).length + readdirSync(`${maildir}/new`).length >= wanted.length, 'in the Maildir on the mailbox replica');
    for (const relay of relays) assert.equal(existsSync(`${relay.stateDir}/mail`), false, 'a relay keeps no Maildirs');
    for (const relay of relays) assert.ok(relay.lines.some((l) => /postfix\/lmtp.*Verified TLS connection established/.test(l)), 'the relay checked the pinned certificate');
    for (const relay of relays) for (const port of [relay.ports.imap, relay.ports.imaps]) assert.equal(await dial(port), 'ECONNREFUSED', `no IMAP on a relay (port ${port})`);
  });

  test('an address banned through one relay is refused by the other relays and at IMAP login on the mailbox replica', async () => {
    const [first, ...others] = topology.relays as [Instance, ...Instance[]];
    const failures = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const { client, auth } = await authenticated(first.ports, ALICE, { password: 'wrong password', localAddress: ATTACKER, timeoutMs: 30_000 });
        client.destroy();
        return auth.code;
      }),
    );
    assert.deepEqual(failures, [535, 535, 535]);
    await waitFor('the ban on the first relay', 10_000, () => events(first, 'ban').find((l) => l.address === ATTACKER));
    for (const relay of others) {
      await waitFor(`the ban learnt by ${relay.ports.submission}`, 10_000, () => events(relay, 'ban_learned').find((l) => l.address === ATTACKER), 100);
      const greeting = await waitFor(`a refusal at connect on ${relay.ports.submission}`, 10_000, async () => {
        const { client, greeting } = await SmtpClient.connect(relay.ports.submission, { localAddress: ATTACKER });
        client.destroy();
        return greeting.code === 554 ? greeting : undefined;
      }, 200);
      assert.match(greeting.text, /too many failed authentications/);
      assert.equal((await submit(relay, ALICE, ['x@outside.example'], 'bystander', BYSTANDER)).code, 250, 'another address is unaffected');
    }
    await waitFor('the ban learnt by the mailbox replica', 10_000, () => events(topology.mailbox, 'ban_learned').find((l) => l.address === ATTACKER), 100);
    assert.equal((await inboxOf(topology.mailbox, ALICE, ATTACKER)).status, 'NO', 'the right password from the banned address, on IMAP');
    assert.equal((await inboxOf(topology.mailbox, ALICE, BYSTANDER)).status, 'OK');
  });

  test('that ban lifted with `relaybox bans lift` on one relay: the address gets in on every relay and at IMAP on the mailbox replica', async () => {
    const [first, ...others] = topology.relays as [Instance, ...Instance[]];
    const status = JSON.parse((await runCli(['status', '--json'], others[0]!.env)).stdout) as { replica: string; sharedState: string };
    assert.equal(status.sharedState, 'redis', 'the CLI says bans are shared');
    const lifted = await runCli(['bans', 'lift', ATTACKER], others[0]!.env);
    assert.equal(lifted.code, 0, lifted.stderr);
    for (const relay of [first, ...others]) {
      const greeting = await waitFor(`a greeting again on ${relay.ports.submission}`, 10_000, async () => {
        const { client, greeting } = await SmtpClient.connect(relay.ports.submission, { localAddress: ATTACKER });
        client.destroy();
        return greeting.code === 220 ? greeting : undefined;
      }, 200);
      assert.equal(greeting.code, 220);
    }
    await waitFor('IMAP login again on the mailbox replica', 10_000, async () => ((await inboxOf(topology.mailbox, ALICE, ATTACKER)).status === 'OK' ? true : undefined), 300);
    assert.equal((await runCli(['bans', 'list'], first.env)).stdout.trim(), 'no bans in force');
  });

  test('a per-user sending limit is counted across the relays', async () => {
    const [first, second, third] = topology.relays as [Instance, Instance, Instance];
    for (const relay of [first, second, third]) assert.equal((await submit(relay, CAROL, ['x@outside.example'], 'carol-limit')).code, 250);
    for (const relay of [first, second, third]) {
      const refused = await submit(relay, CAROL, ['x@outside.example'], 'carol-over');
      assert.equal(refused.code, 451, `the fourth message of a 3/h user, on any relay: ${refused.text}`);
      assert.equal(refused.enhanced, '4.7.1');
      assert.match(refused.text, /Sending limit reached: at most 3 messages per hour/);
    }
    assert.equal((await submit(second, DAVE, ['x@outside.example'], 'dave-unaffected')).code, 250);
  });

  test('the handoff account is refused on 587 and 465, and relays only on the handoff port', async () => {
    const relay = topology.relays[0]!;
    for (const implicitTls of [false, true]) {
      const { client, auth } = await authenticated(relay.ports, HANDOFF_ACCOUNT, { password: HANDOFF_PASSWORD, implicitTls });
      try {
        const { final } = auth.code === 235 ? await client.send(ALICE, ['x@outside.example'], message(ALICE, 'x@outside.example', 'handoff-account-on-submission')) : { final: auth };
        assert.ok(final.code >= 500, `${implicitTls ? 465 : 587}: ${final.code} ${final.text}`);
        if (auth.code === 235) assert.match(final.text, /the handoff account may be used only on the handoff port/);
      } finally {
        await client.quit();
      }
    }
    // The same credentials on the handoff listener (587's dialogue: STARTTLS, then AUTH).
    const { client, auth } = await authenticated({ submission: topology.handoffPorts[0]!, submissions: 0 }, HANDOFF_ACCOUNT, { password: HANDOFF_PASSWORD });
    await client.quit();
    assert.equal(auth.code, 235, auth.text);
    assert.ok(!topology.sink.messages().some((m) => m.includes('handoff-account-on-submission')));
  });

  test('a user suspended with `relaybox users suspend` on one relay may send through none; unsuspended on another, through all', async () => {
    const [first, second, third] = topology.relays as [Instance, Instance, Instance];
    const suspended = await runCli(['users', 'suspend', DAVE, '--reason', 'shared suspension test'], second.env);
    assert.equal(suspended.code, 0, suspended.stderr);
    for (const relay of [first, second, third]) assert.equal((await submit(relay, DAVE, ['x@outside.example'], 'dave-suspended')).code, 550);
    const back = await runCli(['users', 'unsuspend', DAVE], third.env);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((await submit(first, DAVE, ['x@outside.example'], 'dave-back')).code, 250);
  });

  test('Redis killed: sending limits answer with a temporary error, not "no limit", and /ready says why; Redis back: normal', async () => {
    const relay = topology.relays[1]!;
    await topology.redis.kill();
    const refused = await submit(relay, DAVE, ['x@outside.example'], 'while-redis-is-down');
    assert.equal(refused.code, 451, `fail closed: ${refused.text}`);
    assert.match(refused.enhanced ?? '', /^4\./);
    assert.match(refused.text, /Sending limits cannot be checked/);
    const ready = await waitFor('/ready naming redis', 15_000, async () => {
      const response = await relay.get('/ready');
      return (response.body.degraded as string[]).some((line) => /^redis: unreachable/.test(line)) ? response : undefined;
    }, 200);
    assert.equal(ready.status, 200, 'degraded, still serving port 25 and the handoffs');
    assert.equal((ready.body.checks as Record<string, { ok: boolean }>).redis?.ok, false);
    assert.equal(await metric(relay, 'relaybox_probe_up', { check: 'redis' }), 0);
    assert.ok(events(relay, 'store_unreachable').length >= 1);
    // Inbound mail on port 25 is not held up by the store.
    const { client } = await SmtpClient.connect(relay.ports.smtp);
    await client.ehlo();
    assert.equal((await client.send('stranger@outside.example', [BOB], message('stranger@outside.example', BOB, 'inbound-while-redis-is-down'))).final.code, 250);
    await client.quit();

    await topology.redis.resume();
    const accepted = await waitFor('a submission accepted again', 30_000, async () => {
      const reply = await submit(relay, DAVE, ['x@outside.example'], 'after-redis-is-back');
      return reply.code === 250 ? reply : undefined;
    }, 500);
    assert.equal(accepted.code, 250);
    await waitFor('/ready without degradation', 15_000, async () => ((await relay.get('/ready')).body.degraded as string[]).length === 0 || undefined, 200);
  });

  test('a relay stopped with deferred mail hands it to a peer: every message is delivered in the end, none twice', async () => {
    const [first, ...peers] = topology.relays as [Instance, ...Instance[]];
    // The upstream and the mailbox replica are down: mail for both stays deferred in the first relay's queue.
    topology.sink.stop();
    assert.equal(await topology.mailbox.stop(), 0);
    const subjects = Array.from({ length: 5 }, (_, i) => `handoff-${i}`);
    for (const subject of subjects) assert.equal((await submit(first, ALICE, [`${subject}@outside.example`], subject)).code, 250);
    assert.equal((await submit(first, ALICE, [BOB], 'handoff-local')).code, 250);
    await waitFor('the messages deferred on the first relay', 30_000, () => deferred(first) === subjects.length + 1 || undefined, 200);

    assert.equal(await first.stop(), 0);
    const handoffs = events(first, 'handoff');
    assert.equal(handoffs.reduce((sum, l) => sum + Number(l.handedOff), 0), subjects.length + 1, JSON.stringify(handoffs));
    assert.equal(events(first, 'queue_stranded').length, 0);
    assert.equal(queued(first), 0, 'nothing left behind');
    const received = peers.flatMap((peer) => peer.lines.filter((l) => /postfix\/handoff\/smtpd.*sasl_username=relaybox-handoff/.test(l)));
    assert.ok(received.length >= 1, 'the peer took them on its handoff listener, as the handoff account');
    assert.ok(first.lines.some((l) => /postfix\/smtp.*Verified TLS connection established/.test(l)), 'the handoff checked the pinned certificate');

    topology.mailbox.launch();
    await topology.mailbox.waitReady(60_000);
    await topology.sink.resume();
    for (const peer of peers) flush(peer);
    await waitFor('every handed-off message at the upstream', 30_000, () => subjects.every((s) => subjectsAtSink(topology, s).length > 0) || undefined, 200);
    const local = await waitFor("the local message in bob's INBOX", 30_000, async () => {
      for (const peer of peers) flush(peer);
      const { messages } = await inboxOf(topology.mailbox, BOB);
      return messages.some((m) => m.includes('Subject: handoff-local')) ? messages : undefined;
    }, 500);
    // Counted once nothing is left to deliver anywhere: a copy still queued (or held) would show up later.
    for (const box of [...peers, topology.mailbox]) await box.waitQueueEmpty(30_000, { flush: true });
    for (const box of [first, ...peers, topology.mailbox]) assert.equal(queued(box), 0, `${box.stateDir}: ${JSON.stringify(queueCounts(`${box.stateDir}/queue`))}`);
    for (const subject of subjects) assert.equal(subjectsAtSink(topology, subject).length, 1, `${subject} delivered once`);
    assert.equal(local.filter((m) => m.includes('Subject: handoff-local')).length, 1, 'the local message delivered once');
    assert.equal((await inboxOf(topology.mailbox, BOB)).messages.filter((m) => m.includes('Subject: handoff-local')).length, 1, 'the local message delivered once');

    first.launch();
    await first.waitReady(60_000);
  });

  test('no peer answers: the queue stays on the stopping relay, said loudly; it delivers the mail when it returns, none twice', async () => {
    const [first, ...peers] = topology.relays as [Instance, ...Instance[]];
    for (const peer of peers) assert.equal(await peer.stop(), 0);
    topology.sink.stop();
    const subjects = Array.from({ length: 3 }, (_, i) => `stranded-${i}`);
    for (const subject of subjects) assert.equal((await submit(first, ALICE, [`${subject}@outside.example`], subject)).code, 250);
    await waitFor('the messages deferred', 20_000, () => deferred(first) === subjects.length || undefined, 200);

    // Stopping: /ready says draining and the SMTP ports are closed while the queue is still tried.
    const stoppedBefore = events(first, 'stopped').length;
    first.child!.kill('SIGTERM');
    await waitFor('/ready to say draining', 10_000, async () => {
      const ready = await first.get('/ready').catch(() => undefined);
      return ready?.status === 503 && (ready.body.failing as string[]).some((line) => /^draining/.test(line)) ? true : undefined;
    }, 50);
    for (const port of [first.ports.smtp, first.ports.submission, first.ports.submissions]) {
      await waitFor(`port ${port} closed while draining`, 10_000, async () => ((await dial(port)) === 'ECONNREFUSED' ? true : undefined), 50);
    }
    assert.equal(events(first, 'stopped').length, stoppedBefore, 'still draining when the ports were seen closed');
    assert.equal(await first.exit, 0);
    const stranded = events(first, 'queue_stranded').at(-1);
    assert.equal(stranded?.count, subjects.length, JSON.stringify(stranded));
    assert.equal(stranded?.level, 50, 'an error');
    assert.equal(queued(first), subjects.length, 'kept on the volume');

    first.launch(); // the upstream still down: the stranded mail is counted until delivered
    await first.waitReady(60_000);
    assert.ok(events(first, 'queue_stranded_restart').some((l) => l.count === subjects.length));
    assert.equal(await metric(first, 'relaybox_queue_stranded_messages'), subjects.length);
    assert.equal(await first.stop(), 0, 'stopped again, still no peer: stranded again');
    assert.equal(queued(first), subjects.length);

    // The upstream back: the replica's start delivers its own queue, with no flush from outside.
    await topology.sink.resume();
    first.launch();
    await first.waitReady(60_000);
    await waitFor('the stranded mail at the upstream', 30_000, () => subjects.every((s) => subjectsAtSink(topology, s).length > 0) || undefined, 200);
    await first.waitQueueEmpty(30_000);
    for (const subject of subjects) assert.equal(subjectsAtSink(topology, subject).length, 1, `${subject} delivered once`);
    await waitFor('the stranded gauge back to 0', 10_000, async () => (await metric(first, 'relaybox_queue_stranded_messages')) === 0 || undefined, 200);
    for (const peer of peers) peer.launch();
    for (const peer of peers) await peer.waitReady(60_000);
  });

  test('a mailbox replica or a peer whose key is not the pinned one gets neither the mail nor the handoff password', async () => {
    // Right name, trusted CA, another key: only the pin tells them apart.
    const certificate = topology.ca.issue(HOSTNAME);
    const rogueLmtp = await Upstream.start({ certificate, name: 'rogue-lmtp.test' });
    const roguePeer = await Upstream.start({ certificate, name: 'rogue-peer.test' });
    const relay = await Instance.start(
      { ...topology.relayEnv(0), MAILBOX_LMTP_HOST: `127.0.0.1:${rogueLmtp.port}`, HANDOFF_PEERS: `127.0.0.1:${roguePeer.port}`, PORT_HANDOFF: String(await freePort()) },
      { sink: topology.sink },
    );
    try {
      assert.equal((await submit(relay, ALICE, [BOB], 'to-a-rogue-mailbox')).code, 250);
      const deferred = await waitFor('the LMTP delivery deferred', 30_000, () => relay.lines.find((l) => /postfix\/lmtp.*to=<bob@relaybox\.test>.*status=deferred/.test(l)), 100);
      assert.match(deferred, /certificate|fingerprint|verif/i);
      assert.ok(rogueLmtp.commands.some((c) => c.line === 'STARTTLS'), 'the relay did reach the rogue LMTP server');
      assert.deepEqual(rogueLmtp.commands.filter((c) => /^(MAIL|RCPT|DATA)/i.test(c.line)), [], 'no transaction with a server whose key is not pinned');

      assert.equal(await relay.stop(), 0, relay.lines.slice(-12).join('\n'));
      assert.ok(roguePeer.commands.some((c) => c.line === 'STARTTLS'), 'the handoff did reach the rogue peer');
      assert.deepEqual(roguePeer.passwords, [], 'the handoff password went to a peer whose key is not pinned');
      assert.equal(roguePeer.messages.length, 0);
      assert.equal(events(relay, 'queue_stranded').at(-1)?.count, 1, 'kept on the relay instead');
      assert.equal(rogueLmtp.messages.length, 0);
      relay.assertNoSecrets();
      assert.ok(!relay.lines.join('\n').includes(HANDOFF_PASSWORD));
    } finally {
      // Not relay.destroy(): that would remove the topology's shared sink.
      await relay.stop();
      rmSync(relay.stateDir, { recursive: true, force: true });
      await rogueLmtp.stop();
      await roguePeer.stop();
    }
  });

  test('a full mailbox on the mailbox replica: the relay bounces the message to its sender with 552 5.2.2, none is dropped', async () => {
    const { mailbox } = topology;
    const relay = topology.relays[1]!;
    assert.equal(await mailbox.stop(), 0);
    mailbox.env.MAILBOX_QUOTA = '1M';
    mailbox.launch();
    await mailbox.waitReady(60_000);
    try {
      const body = `${'over quota '.repeat(7)}\r\n`.repeat(20_000); // about 1.5 MB, over dave's 1 MB
      assert.equal((await submitAs(relay.ports, ALICE, [DAVE], 'over-quota', { body })).code, 250, 'accepted by the relay, which cannot ask the mailbox at RCPT time');
      const bounced = await waitFor('the LMTP refusal', 30_000, () => relay.lines.find((l) => /postfix\/lmtp.*to=<dave@relaybox\.test>.*status=bounced/.test(l)), 100);
      assert.match(bounced, /552 5\.2\.2/);
      const notice = await waitFor("the bounce in alice's INBOX on the mailbox replica", 30_000, async () => (await inboxOf(mailbox, ALICE)).messages.find((m) => /MAILER-DAEMON/i.test(m) && m.includes('over-quota')), 500);
      assert.match(notice, /5\.2\.2/);
      assert.ok(!(await inboxOf(mailbox, DAVE)).messages.some((m) => m.includes('Subject: over-quota')), 'not delivered over the quota');
      await relay.waitQueueEmpty(30_000);
    } finally {
      assert.equal(await mailbox.stop(), 0);
      delete mailbox.env.MAILBOX_QUOTA;
      mailbox.launch();
      await mailbox.waitReady(60_000);
    }
  });

  test('no secret in any replica\'s logs or HTTP bodies (the handoff password, hashes, the auth policy keys)', () => {
    topology.assertNoSecrets();
    assert.ok(!topology.instances.some((i) => i.lines.join('\n').includes(HANDOFF_PASSWORD)));
  });
});

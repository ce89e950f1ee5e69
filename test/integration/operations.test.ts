// Operating relaybox without a shell, through `relaybox queue|users|bans|status` and the supervisor's
// control socket, against the real daemons: a message deferred by an upstream that refuses it is
// listed with its reason, held, released and delivered once; a ban lifted lets the address log in
// again on SMTP and IMAP; a suspended user's held mail is released in one step; bad input to every
// command is refused with a clear error and changes nothing; every change is audited and counted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, runCli, waitFor } from '../helpers/instance.ts';
import { counter, gauge, scrape } from '../helpers/metrics.ts';
import { SmtpClient, authenticated, submit as submitAs } from '../helpers/smtp.ts';
import { ImapSession } from '../../src/protocol/session.ts';

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const ATTACKER = '127.0.0.2';

/** One message submitted on 587 as `user` (helpers/smtp.ts). */
const submit = (box: Instance, user: string, to: string, subject: string) => submitAs(box.ports, user, [to], subject);

async function cli(box: Instance, args: string[]) {
  const result = await runCli(args, box.env);
  return { ...result, json: (() => { try { return JSON.parse(result.stdout) as any; } catch { return undefined; } })() }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function listed(box: Instance, filter: string[]) {
  const { code, json, stderr } = await cli(box, ['queue', 'list', '--json', ...filter]);
  assert.equal(code, 0, stderr);
  return json.messages as Array<{ id: string; state: string; reason?: string; sender: string; recipients: Array<{ address: string }> }>;
}

const arrived = (box: Instance, subject: string) => box.sink.messages().filter((m) => m.includes(`Subject: ${subject}`)).length;

describe('operations: queue, bans and accounts from the CLI', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ AUTH_BAN_THRESHOLD: '3', AUTH_BAN_WINDOW: '10m', AUTH_BAN_DURATION: '1h', AUTH_FAILURE_DELAY: '0', SEND_SUSPEND_THRESHOLD: '0' });
  });
  after(async () => {
    await box.destroy();
  });

  test('a message the upstream refuses is listed deferred with its reason, held, released and delivered once', async () => {
    await box.sink.stop();
    assert.equal((await submit(box, ALICE, 'someone@outside.example', 'held-then-released')).code, 250);
    const [deferred] = await waitFor('the message deferred', 30_000, async () => {
      const found = await listed(box, ['--state', 'deferred', '--sender', 'alice@']);
      return found.length > 0 && found[0]!.reason ? found : undefined;
    }, 500);
    assert.match(deferred!.reason!, /Connection refused/);
    assert.deepEqual(deferred!.recipients.map((r) => r.address), ['someone@outside.example']);
    const table = await cli(box, ['queue', 'list']);
    assert.match(table.stdout, new RegExp(`^${deferred!.id}\\s+deferred\\s+.*alice@relaybox\\.test\\s+someone@outside\\.example\\s+.*Connection refused`, 'm'));
    assert.match(table.stdout, /^by destination: outside\.example 1$/m);

    const held = await cli(box, ['queue', 'hold', deferred!.id, '--json']);
    assert.equal(held.code, 0, held.stderr);
    assert.deepEqual(held.json.ids, [deferred!.id]);
    assert.equal((await listed(box, ['--state', 'hold']))[0]?.id, deferred!.id);
    const shown = await cli(box, ['queue', 'show', deferred!.id, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.json.headers, /^Subject: held-then-released$/m);
    assert.equal(shown.json.body, undefined, 'no body unless asked for');
    assert.equal(shown.json.message.user, ALICE);

    // The upstream is back; a retry of everything leaves held mail alone.
    await box.sink.resume();
    const retried = await cli(box, ['queue', 'retry', '--all']);
    assert.equal(retried.code, 1, 'nothing deferred to retry');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(arrived(box, 'held-then-released'), 0, 'held mail is not delivered');

    const released = await cli(box, ['queue', 'release', '--user', ALICE, '--state', 'hold', '--json']);
    assert.equal(released.code, 0, released.stderr);
    assert.deepEqual(released.json.ids, [deferred!.id]);
    await waitFor('the released message upstream', 20_000, () => arrived(box, 'held-then-released') > 0 || undefined, 200);
    await box.waitQueueEmpty();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(arrived(box, 'held-then-released'), 1, 'delivered once');

    const audit = box.logs().filter((l) => l.event === 'admin_action');
    assert.deepEqual(audit.map((l) => l.action), ['queue_hold', 'queue_release']);
    assert.deepEqual(audit[0]!.ids, [deferred!.id]);
    assert.match(String(audit[0]!.actor), /^cli:/);
    const metrics = await scrape(box.url('/metrics'));
    assert.equal(counter(metrics, 'relaybox_admin_actions_total', { action: 'queue_hold' }), 1);
    assert.equal(counter(metrics, 'relaybox_admin_actions_total', { action: 'queue_release' }), 1);
    assert.equal(gauge(metrics, 'relaybox_queue_oldest_message_age_seconds'), 0);
  });

  test('bad input to every command: a clear error naming what is wrong (exit 2), nothing changed', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['queue', 'hold'], 2, /name the message\(s\)/],
      [['queue', 'hold', 'not-an-id!'], 2, /not a Postfix queue id/],
      [['queue', 'list', '--state', 'stuck'], 2, /state: "stuck" is not a queue state; use one of active, deferred, hold/],
      [['queue', 'list', '--older-than', 'soon'], 2, /older-than: "soon" is not a duration/],
      [['queue', 'release', 'ABCDEF123456'], 1, /no message ABCDEF123456/],
      [['queue', 'frobnicate'], 2, /unknown queue command "frobnicate"/],
      [['queue', 'list', '--colour'], 2, /Unknown option '--colour'/],
      [['bans', 'lift', 'not-an-address'], 2, /is not an IP address/],
      [['bans', 'lift', '192.0.2.99'], 1, /192\.0\.2\.99 is not banned/],
      [['bans', 'add', '192.0.2.99', '--duration', 'forever'], 2, /duration: "forever" is not a duration/],
      [['bans', 'add', '127.0.0.1'], 1, /never banned/],
      [['users', 'suspend', ALICE], 2, /--reason TEXT/],
      [['users', 'suspend', `nobody@${DOMAIN}`, '--reason', 'x'], 1, /not a user in MAIL_USERS/],
      [['users', 'unsuspend', BOB], 1, /is not suspended/],
      [['status', '--state-dir', '/nonexistent'], 3, /cannot reach the supervisor on \/nonexistent\/control\.sock/],
    ];
    for (const [args, code, error] of cases) {
      const result = await cli(box, args);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, error, args.join(' '));
    }
    assert.equal(box.logs().filter((l) => l.event === 'admin_action').length, 2, 'only the earlier test changed anything');
    const status = await cli(box, ['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.json.bans, 0);
    assert.equal(status.json.ready, true);
    assert.match((await cli(box, ['status'])).stdout, /^replica \S+ \(ROLE=all, mail\.relaybox\.test\): ready/);
    assert.match((await cli(box, ['--help'])).stdout, /^  queue hold\|release\|delete\|retry \(ID\.\.\. \| FILTERS \| --all\)$/m, 'the usage lists the admin commands');
  });

  test('a ban lifted lets the address log in again on SMTP and on IMAP', async () => {
    const failures = await Promise.all(Array.from({ length: 3 }, async () => {
      const { client, auth } = await authenticated(box.ports, ALICE, { password: 'wrong password', localAddress: ATTACKER, timeoutMs: 30_000 });
      client.destroy();
      return auth.code;
    }));
    assert.deepEqual(failures, [535, 535, 535]);
    const bans = await waitFor('the ban listed', 10_000, async () => {
      const { json } = await cli(box, ['bans', 'list', '--json']);
      return json.length > 0 ? json : undefined;
    }, 300);
    assert.equal(bans[0].address, ATTACKER);
    assert.ok(bans[0].remainingSeconds > 3500 && bans[0].remainingSeconds <= 3600);
    assert.ok(bans[0].ports.includes(`submission/${box.ports.submission}`) && bans[0].ports.includes(`imaps/${box.ports.imaps}`));
    const imap = async () => {
      const { client } = await ImapSession.connect(box.ports.imaps, { tls: true, localAddress: ATTACKER, timeoutMs: 30_000 });
      try {
        return (await client.login(ALICE, PASSWORD)).status;
      } finally {
        await client.logout();
      }
    };
    assert.equal(await imap(), 'NO', 'banned at IMAP login');

    const lifted = await cli(box, ['bans', 'lift', ATTACKER]);
    assert.equal(lifted.code, 0, lifted.stderr);
    assert.equal(lifted.stdout.trim(), `lifted the ban on ${ATTACKER}`);
    const auth = await waitFor('SMTP AUTH from the address again', 10_000, async () => {
      const { client, greeting } = await SmtpClient.connect(box.ports.submission, { localAddress: ATTACKER });
      try {
        if (greeting.code !== 220) return undefined;
        await client.ehlo();
        await client.starttls();
        return (await client.authPlain(ALICE, PASSWORD)).code;
      } finally {
        client.destroy();
      }
    }, 300);
    assert.equal(auth, 235);
    assert.equal(await imap(), 'OK', 'IMAP login again');
    assert.equal((await cli(box, ['bans', 'list'])).stdout.trim(), 'no bans in force');
    assert.ok(box.logs().some((l) => l.event === 'admin_action' && l.action === 'ban_lift' && l.address === ATTACKER));
  });

  test("a suspended user: their recent mail held, refused while suspended, and released in one step with the unsuspension", async () => {
    await box.sink.stop();
    assert.equal((await submit(box, BOB, 'friend@outside.example', 'bob-before-suspension')).code, 250);
    await waitFor('bob\'s message deferred', 30_000, async () => ((await listed(box, ['--user', BOB, '--state', 'deferred'])).length === 1 ? true : undefined), 500);
    const suspended = await cli(box, ['users', 'suspend', BOB, '--reason', 'password phished', '--json']);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.equal(suspended.json.held, 1);
    const users = (await cli(box, ['users', 'list', '--json'])).json as Array<{ address: string; suspended: boolean; suspension?: { reason: string }; lastLogin?: number }>;
    const bob = users.find((u) => u.address === BOB)!;
    assert.equal(bob.suspended, true);
    assert.equal(bob.suspension?.reason, 'password phished');
    assert.ok(bob.lastLogin, 'the last login seen');
    assert.equal(users.find((u) => u.address === ALICE)!.suspended, false);
    const refused = await submit(box, BOB, 'friend@outside.example', 'bob-while-suspended');
    assert.equal(refused.code, 550, refused.text);
    assert.equal((await listed(box, ['--user', BOB, '--state', 'hold'])).length, 1);
    const early = await cli(box, ['users', 'release-held', BOB]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /still suspended: unsuspend first/);

    await box.sink.resume();
    const back = await cli(box, ['users', 'unsuspend', BOB, '--release-held', '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.json.held.ids.length, 1);
    await waitFor('bob\'s held message upstream', 20_000, () => arrived(box, 'bob-before-suspension') > 0 || undefined, 200);
    await box.waitQueueEmpty();
    assert.equal(arrived(box, 'bob-before-suspension'), 1);
    assert.equal(arrived(box, 'bob-while-suspended'), 0);
    assert.equal((await submit(box, BOB, 'friend@outside.example', 'bob-after')).code, 250, 'bob may send again');
    const actions = box.logs().filter((l) => l.event === 'admin_action').map((l) => l.action);
    assert.deepEqual(actions.slice(-3), ['user_suspend', 'user_unsuspend', 'queue_release']);
  });
});

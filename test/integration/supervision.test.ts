// Supervision against the real daemons: crashes are healed, a lost auth socket is noticed,
// a taken port is diagnosed, SIGTERM leaves nothing running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { DOMAIN, Instance, processesIn, runCli, waitFor } from '../helpers/instance.ts';
import { maildirOf } from '../helpers/files.ts';
import { queueCounts } from '../helpers/queue.ts';
import { ReadyWatch } from '../helpers/ready.ts';
import { SmtpClient, authWorks as authWorksFor, message } from '../helpers/smtp.ts';

const authWorks = (box: Instance) => authWorksFor(box.ports, `alice@${DOMAIN}`);
const authWorksImplicitTls = (box: Instance) => authWorksFor(box.ports, `alice@${DOMAIN}`, { implicitTls: true, timeoutMs: 3000 });

const countDeferred = (box: Instance) => queueCounts(`${box.stateDir}/queue`).deferred;
const mailboxFiles = (box: Instance, user: string) => maildirOf(box.stateDir, DOMAIN, user);

async function readyStatus(box: Instance): Promise<number> {
  try {
    return (await fetch(box.url('/ready'))).status;
  } catch {
    return 0;
  }
}

/**
 * Kills a pid with -9 while /ready is polled back to back: /ready must say 503 with the daemon not
 * running, then 200 again once the daemon has been restarted. Returns the time to recovery.
 */
async function killAndRecover(box: Instance, pid: number, restartsBefore: number, daemon: 'postfix' | 'dovecot'): Promise<{ ms: number; down: number }> {
  const watch = new ReadyWatch(box.url('/ready'));
  await waitFor('the watch to see /ready 200', 5000, () => watch.answers.some((a) => a.status === 200) || undefined, 10);
  const started = performance.now();
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  try {
    await waitFor(`${daemon} to be restarted`, 20_000, async () => {
      const { body } = await box.get('/health');
      const status = (body.daemons as Record<string, { restarts: number; state: string }>)[daemon]!;
      return status.restarts > restartsBefore && status.state === 'running' ? true : undefined;
    });
    await waitFor('/ready 200 after the restart', 20_000, () => watch.answers.some((a) => a.at > killedAt && a.status === 200 && a.body?.daemons?.[daemon]?.restarts === restartsBefore + 1) || undefined);
  } finally {
    await watch.stop();
  }
  const after = watch.answers.filter((a) => a.at >= killedAt);
  // 503 from the kill until probes pass against the new processes. A restart can be over within
  // milliseconds (the state is then "running" again while the old results are cleared), so the
  // answers need not catch the daemon in a state other than running; they must not say 200 early.
  const down = after.filter((a) => a.status === 503);
  assert.ok(down.length > 0, `/ready never said 503 after ${daemon} was killed: ${JSON.stringify(after.map((a) => [a.status, a.body?.daemons?.[daemon]?.state]))}`);
  const recovered = after.find((a) => a.status === 200 && a.body?.daemons?.[daemon]?.restarts === restartsBefore + 1);
  assert.ok(after.every((a) => a.status !== 200 || a.body?.daemons?.[daemon]?.restarts === restartsBefore + 1 || a.at < down[0]!.at), '/ready said 200 for the killed processes');
  assert.ok(recovered && down[0]!.at <= recovered.at, '/ready said 200 before it said 503');
  assert.ok(after.every((a) => a.status !== 200 || a.at < down[0]!.at || a.body?.daemons?.[daemon]?.state === 'running'), '/ready said 200 while the daemon was not running');
  return { ms: Math.round(performance.now() - started), down: down.length };
}

describe('supervision', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start();
  });
  after(async () => {
    await box.destroy();
  });

  test('/health and /ready report every check and the daemons, no secrets', async () => {
    const health = await box.get('/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const ready = await box.get('/ready');
    assert.equal(ready.status, 200);
    const checks = ready.body.checks as Record<string, { ok: boolean }>;
    for (const name of ['sasl', `smtp:${box.ports.smtp}`, `submission:${box.ports.submission}`, `submissions:${box.ports.submissions}`, `imap:${box.ports.imap}`, `imaps:${box.ports.imaps}`]) {
      assert.equal(checks[name]?.ok, true, `${name}: ${JSON.stringify(checks[name])}`);
    }
    assert.ok(!health.text.includes('$6$') && !ready.text.includes('$6$'));
  });

  for (const { daemon, label, pidFile } of [
    { daemon: 'dovecot', label: 'Dovecot', pidFile: 'run/master.pid' },
    { daemon: 'postfix', label: 'Postfix', pidFile: 'queue/pid/master.pid' },
  ] as const) {
    test(`kill -9 of the ${label} master: /ready recovers and AUTH works again`, async (t) => {
      const pid = Number(readFileSync(`${box.stateDir}/${pidFile}`, 'utf8'));
      const { body } = await box.get('/health');
      const restarts = (body.daemons as Record<string, { restarts: number }>)[daemon]!.restarts;
      const { ms, down } = await killAndRecover(box, pid, restarts, daemon);
      t.diagnostic(`${label} master killed: ready again after ${ms} ms (${down} answers of 503 meanwhile)`);
      assert.ok(await authWorks(box));
      assert.ok(box.logs().some((l) => l.event === 'daemon_exit' && l.daemon === daemon), `no daemon_exit for ${daemon}`);
    });
  }

  test('a deleted auth socket is detected (/ready 503) and healed', async () => {
    rmSync(`${box.stateDir}/queue/private/auth`);
    await waitFor('/ready to report the SASL failure', 10_000, async () => ((await readyStatus(box)) === 503 ? true : undefined));
    await waitFor('/ready 200 again', 30_000, async () => ((await readyStatus(box)) === 200 ? true : undefined));
    assert.ok(await authWorks(box));
    assert.ok(box.logs().some((l) => l.event === 'daemon_restart' && l.daemon === 'dovecot' && String(l.reason).includes('sasl')));
  });

  test('daemon log lines are re-emitted as JSON with a service field', () => {
    const logs = box.logs();
    assert.ok(logs.some((l) => l.service === 'postfix' && String(l.msg).includes('daemon started')));
    assert.ok(logs.some((l) => l.service === 'dovecot' && String(l.msg).includes('starting up')));
    assert.ok(logs.some((l) => l.service === 'supervisor' && l.event === 'ready'));
    const nonJson = box.lines.filter((line) => !line.startsWith('{'));
    assert.deepEqual(nonJson, []);
  });

  test('SIGTERM: a clean stop (exit 0, "stopped", no shutdown timeout) and no daemon process of the instance left', async () => {
    const code = await box.stop();
    assert.equal(code, 0);
    // The supervisor's own deadline also exits 0 (shutdown_timeout): only "stopped" says every daemon ended in time.
    assert.ok(box.logs().some((l) => l.event === 'stopped'), 'no "stopped" event');
    assert.ok(!box.logs().some((l) => l.event === 'shutdown_timeout'), 'the stop ran into the shutdown deadline');
    await waitFor('processes to be gone', 2000, () => (processesIn(box.stateDir).length === 0 ? true : undefined)).catch(() => undefined);
    assert.deepEqual(processesIn(box.stateDir), []);
  });
});

describe('a port already taken', () => {
  test('is an error naming the variable, the port and the process holding it; nothing starts', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const box = await Instance.start({ PORT_SUBMISSION: String(port) }, { waitReady: false });
    try {
      const code = await box.exit;
      assert.equal(code, 2);
      const output = box.lines.join('\n');
      assert.match(output, new RegExp(`PORT_SUBMISSION=${port}`));
      assert.match(output, /Address already in use/);
      assert.match(output, new RegExp(`held by process ${process.pid} \\(\\S*node`));
      assert.deepEqual(processesIn(box.stateDir), []);
    } finally {
      blocker.close();
      await box.destroy();
    }
  });
});

describe('two instances side by side', () => {
  test('run at once with their own STATE_DIR and ports', async () => {
    const [a, b] = await Promise.all([Instance.start(), Instance.start()]);
    try {
      assert.ok(await authWorks(a));
      assert.ok(await authWorks(b));
      const check = await runCli(['check-config'], a.env);
      assert.equal(check.code, 0);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });
});

describe('a crash loop', () => {
  test('spends RESTART_BUDGET, turns /health 503 naming the daemon, then exits 1 with nothing left running', async () => {
    const box = await Instance.start({ RESTART_BUDGET: '2' });
    try {
      // Dovecot can no longer start: every restart fails at once.
      writeFileSync(`${box.stateDir}/dovecot/dovecot.conf`, 'this is not a dovecot setting\n');
      process.kill(Number(readFileSync(`${box.stateDir}/run/master.pid`, 'utf8')), 'SIGKILL');
      const health = await waitFor('/health 503', 20_000, async () => {
        const response = await box.get('/health').catch(() => undefined);
        return response?.status === 503 ? response : undefined;
      }, 100);
      assert.equal(health.body.status, 'failed');
      assert.match(String(health.body.error), /dovecot restarted 2 times/);
      assert.ok(box.logs().some((l) => l.event === 'crash_loop' && l.daemon === 'dovecot'));
      const code = await Promise.race([box.exit, new Promise((resolve) => setTimeout(() => resolve('still running'), 30_000))]);
      assert.equal(code, 1);
      assert.deepEqual(processesIn(box.stateDir), []);
    } finally {
      await box.destroy();
    }
  });
});

describe('a Dovecot outage', () => {
  test('is held against Dovecot: Postfix is not restarted, serves 465 again as soon as Dovecot is back, and delivers what it deferred meanwhile', async (t) => {
    const box = await Instance.start({ RESTART_BUDGET: '100' });
    try {
      const conf = `${box.stateDir}/dovecot/dovecot.conf`;
      const good = readFileSync(conf, 'utf8');
      // Dovecot cannot start for a while: every restart fails, its backoff grows.
      writeFileSync(conf, 'this is not a dovecot setting\n');
      process.kill(Number(readFileSync(`${box.stateDir}/run/master.pid`, 'utf8')), 'SIGKILL');
      // Idle smtpd processes would keep answering; a new one on 465 (where SASL starts with the
      // session) cannot reach the auth socket and exits, and Postfix's master throttles the service.
      await waitFor('Dovecot to be down', 5000, async () => ((await readyStatus(box)) === 503 ? true : undefined));
      for (const pid of processesIn(box.stateDir).filter((p) => / smtpd /.test(p)).map((p) => Number(p.split(' ')[0]))) process.kill(pid, 'SIGKILL');
      const blamed = await waitFor('/ready to name Dovecot as the cause on port 465', 15_000, async () => {
        const { body } = await box.get('/ready');
        const check = (body.checks as Record<string, { ok: boolean; cause?: string }>)[`submissions:${box.ports.submissions}`];
        return check && !check.ok && check.cause?.startsWith('dovecot') ? check : undefined;
      }, 100);
      t.diagnostic(`465's check during the outage: ${JSON.stringify(blamed)}`);
      // Inbound mail for a mailbox is accepted meanwhile; its delivery to Dovecot is deferred.
      const { client } = await SmtpClient.connect(box.ports.smtp, { localAddress: '127.0.0.3' });
      await client.ehlo('mail.sender.example');
      const { final } = await client.send('news@sender.example', [`bob@${DOMAIN}`], message('news@sender.example', `bob@${DOMAIN}`, 'during-the-dovecot-outage'));
      await client.quit();
      assert.equal(final.code, 250, final.text);
      await waitFor('the delivery to be deferred', 15_000, () => (countDeferred(box) > 0 ? true : undefined), 100);
      // The outage lasts until /ready has blamed Dovecot for 465 over a stretch longer than the 4 s after
      // which a failing check of its own gets a daemon restarted (seen in /ready's answers, not slept).
      const watch = new ReadyWatch(box.url('/ready'));
      const blamedFor = () => {
        const blaming = watch.answers.filter((a) => a.body?.checks?.[`submissions:${box.ports.submissions}`]?.cause?.startsWith('dovecot'));
        return blaming.length > 1 ? blaming.at(-1)!.at - blaming[0]!.at : 0;
      };
      await waitFor('/ready blaming Dovecot for 465 over more than 4.5 s', 20_000, () => blamedFor() > 4500 || undefined, 100).finally(() => watch.stop());
      assert.ok(!box.logs().some((l) => l.event === 'daemon_restart' && l.daemon === 'postfix'), 'Postfix was restarted during the Dovecot outage');
      writeFileSync(conf, good);
      await waitFor('Dovecot to run again', 20_000, async () => {
        const { body } = await box.get('/health');
        return (body.daemons as Record<string, { state: string }>).dovecot!.state === 'running' || undefined;
      }, 50);
      const back = performance.now();
      // Postfix's own throttle would hold the service for service_throttle_time (60 s).
      await waitFor('AUTH on 465 to work again', 20_000, async () => ((await authWorksImplicitTls(box).catch(() => false)) ? true : undefined), 100);
      t.diagnostic(`AUTH on 465 worked again ${Math.round(performance.now() - back)} ms after Dovecot was running again`);
      assert.ok(await authWorks(box));
      await waitFor('/ready 200', 10_000, async () => ((await readyStatus(box)) === 200 ? true : undefined));
      const { body } = await box.get('/health');
      assert.equal((body.daemons as Record<string, { restarts: number }>).postfix!.restarts, 0);
      assert.ok(!box.logs().some((l) => l.event === 'daemon_restart' && l.daemon === 'postfix'), 'Postfix was restarted for a Dovecot outage');
      // Postfix's retry backoff would hold it for 5 minutes and more.
      await waitFor('the deferred message in the mailbox', 20_000, () => (mailboxFiles(box, 'bob').some((m) => m.includes('during-the-dovecot-outage')) ? true : undefined), 200);
    } finally {
      await box.destroy();
    }
  });
});

describe('a supervisor killed with -9', () => {
  test('leaves daemons that the next start of the same STATE_DIR ends before starting its own', async () => {
    const box = await Instance.start();
    try {
      const dovecot = Number(readFileSync(`${box.stateDir}/run/master.pid`, 'utf8'));
      box.child!.kill('SIGKILL');
      await box.exit;
      assert.ok(processesIn(box.stateDir).length > 0, 'the daemons outlive a SIGKILLed supervisor');
      box.launch();
      await box.waitReady();
      assert.ok(box.logs().some((l) => l.event === 'orphan_ended' && l.pid === dovecot));
      assert.notEqual(Number(readFileSync(`${box.stateDir}/run/master.pid`, 'utf8')), dovecot);
    } finally {
      await box.destroy();
    }
    assert.deepEqual(processesIn(box.stateDir), []);
  });
});

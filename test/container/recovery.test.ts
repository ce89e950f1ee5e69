// Self-healing: kill -9 the Postfix master, then the Dovecot master, inside the running container.
// The container must stay up, /ready must say 503 while the daemon is down and 200 again once it
// is back, and AUTH must work again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { PASSWORD, USER, execIn, log } from './harness.ts';
import { withRelaybox } from './fixture.ts';
import { ReadyWatch } from '../helpers/ready.ts';
import { SmtpClient } from '../helpers/smtp.ts';
import { waitFor } from '../helpers/wait.ts';

/** Pid of the process whose /proc/PID/comm is `comm` and whose parent is not another `comm`. */
async function masterPid(container: Docker.Container, comm: string): Promise<number | undefined> {
  const script = `for d in /proc/[0-9]*; do c=$(cat $d/comm 2>/dev/null) || continue; [ "$c" = "${comm}" ] || continue; pp=$(awk '/^PPid:/{print $2}' $d/status 2>/dev/null); pc=$(cat /proc/$pp/comm 2>/dev/null); [ "$pc" = "${comm}" ] && continue; echo \${d#/proc/}; done`;
  const r = await execIn(container, ['sh', '-c', script]);
  const pids = r.output.split(/\s+/).filter(Boolean).map(Number);
  return pids[0];
}

async function authWorks(port: number): Promise<{ ok: boolean; detail: string }> {
  try {
    const { client } = await SmtpClient.connect(port, { timeoutMs: 10_000 });
    try {
      await client.ehlo();
      await client.starttls(); // throws when refused; answers with the EHLO after TLS
      const r = await client.authPlain(USER, PASSWORD);
      return { ok: r.code === 235, detail: r.text };
    } finally {
      await client.quit();
    }
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

test('container: recovers from kill -9 of the Postfix and Dovecot masters', { timeout: 30 * 60_000 }, async (t) => {
  const box = await withRelaybox(t);
  if (!box) return;
  const { container, ports } = box;
  assert.ok((await authWorks(ports.submission)).ok, 'AUTH before the kills');

  for (const [daemon, comm, key] of [['Postfix', 'master', 'postfix'], ['Dovecot', 'dovecot', 'dovecot']] as const) {
    await t.test(`kill -9 the ${daemon} master: /ready 503 while it is down, 200 once it is back`, async () => {
      const pid = await masterPid(container, comm);
      assert.ok(pid, `no ${daemon} master (${comm}) process found`);
      const watch = new ReadyWatch(`http://127.0.0.1:${ports.http}/ready`);
      let killedAt = 0;
      let before: number | undefined;
      try {
        const ready = await waitFor('/ready 200 before the kill', 10_000, () => watch.answers.find((a) => a.status === 200), 10);
        before = ready.body?.daemons?.[key]?.restarts;
        assert.equal(typeof before, 'number', `/ready lists no restart count for ${key}`);
        killedAt = Date.now();
        // The image has no procps: the shell's kill builtin.
        const k = await execIn(container, ['sh', '-c', `kill -9 ${pid}`]);
        assert.equal(k.code, 0, k.output);
        // Recovered = /ready 200 again, for the restarted daemon (its restart counter went up).
        await waitFor(`/ready 200 after restarting ${daemon}`, 60_000, async () => {
          const state = (await container.inspect()).State;
          assert.ok(state.Running, `container stopped after killing the ${daemon} master:\n${await box.logs()}`);
          return watch.answers.some((a) => a.at > killedAt && a.status === 200 && a.body?.daemons?.[key]?.restarts === before! + 1) || undefined;
        }, 100);
      } finally {
        await watch.stop();
      }
      const after = watch.answers.filter((a) => a.at >= killedAt);
      // 503 from the kill until probes pass against the new processes (a restart can be over before a
      // poll catches the daemon in a state other than running); never 200 for the killed processes.
      const down = after.filter((a) => a.status === 503);
      assert.ok(down.length > 0, `/ready never said 503 after the ${key} master was killed: ${JSON.stringify(after.map((a) => [a.status, a.body?.daemons?.[key]?.state]))}`);
      assert.ok(after.every((a) => a.status !== 200 || a.at < down[0]!.at || a.body?.daemons?.[key]?.restarts === before! + 1), '/ready said 200 for the killed processes');
      const readyAt = after.find((a) => a.status === 200 && a.at > down[0]!.at)!.at;

      let auth = await authWorks(ports.submission);
      await waitFor(`AUTH after restarting ${daemon}`, 30_000, async () => (auth = await authWorks(ports.submission)).ok || undefined, 250).catch(() => undefined);
      assert.ok(auth.ok, `AUTH after restarting ${daemon}: ${auth.detail}`);
      log(`${daemon} master killed: /ready 503 (${down.length} answers), back to 200 after ${readyAt - killedAt} ms`);
      t.diagnostic(`${daemon} recovery: ${down.length} answers of 503, ready again after ${readyAt - killedAt} ms`);
    });
  }

  await t.test('the container is still the same running container', async () => {
    const state = (await container.inspect()).State;
    assert.equal(state.Running, true);
    assert.equal(state.Restarting, false);
  });
});

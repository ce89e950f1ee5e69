// Self-healing: kill -9 the Postfix master, then the Dovecot master, inside the running container.
// The container must stay up, /ready must come back, and AUTH must work again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import {
  PASSWORD, USER, containerLogs, createVolume, engineOrSkip, ensureImage, execIn, freePorts, log,
  relayboxEnv, relayboxPorts, removeContainer, removeVolume, sleep, startRelaybox, waitReady,
} from './harness.ts';
import { SmtpClient } from '../helpers/smtp.ts';

/** Pid of the process whose /proc/PID/comm is `comm` and whose parent is not another `comm`. */
async function masterPid(container: Docker.Container, comm: string): Promise<number | undefined> {
  const script = `for d in /proc/[0-9]*; do c=$(cat $d/comm 2>/dev/null) || continue; [ "$c" = "${comm}" ] || continue; pp=$(awk '/^PPid:/{print $2}' $d/status 2>/dev/null); pc=$(cat /proc/$pp/comm 2>/dev/null); [ "$pc" = "${comm}" ] && continue; echo \${d#/proc/}; done`;
  const r = await execIn(container, ['sh', '-c', script]);
  const pids = r.output.split(/\s+/).filter(Boolean).map(Number);
  return pids[0];
}

interface ReadyBody {
  daemons?: Record<string, { restarts?: number; state?: string }>;
}

async function readyBody(port: number): Promise<{ status: number | string; body?: ReadyBody }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    let body: ReadyBody | undefined;
    try {
      body = JSON.parse(text) as ReadyBody;
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } catch (err) {
    return { status: (err as Error).message };
  }
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
  const docker = await engineOrSkip(t);
  if (!docker) return;
  const image = await ensureImage(docker);
  const ports = await relayboxPorts();
  const [sinkPort] = (await freePorts(1)) as [number];
  const volume = await createVolume(docker);
  const container = await startRelaybox(docker, image, { env: relayboxEnv(ports, sinkPort), volume });
  t.after(async () => {
    await removeContainer(container);
    await removeVolume(docker, volume);
  });
  await waitReady(container, ports.http, 90_000);
  assert.ok((await authWorks(ports.submission)).ok, 'AUTH before the kills');

  for (const [daemon, comm, key] of [['Postfix', 'master', 'postfix'], ['Dovecot', 'dovecot', 'dovecot']] as const) {
    await t.test(`kill -9 the ${daemon} master`, async () => {
      const pid = await masterPid(container, comm);
      assert.ok(pid, `no ${daemon} master (${comm}) process found`);
      const before = (await readyBody(ports.http)).body?.daemons?.[key]?.restarts;
      const killedAt = Date.now();
      // The image has no procps: the shell's kill builtin.
      const k = await execIn(container, ['sh', '-c', `kill -9 ${pid}`]);
      assert.equal(k.code, 0, k.output);

      // Recovered = /ready answers 200 again for the restarted daemon: its restart counter in the
      // /ready body went up (or, if the body has none, a new master pid exists).
      let sawNotReady = false;
      let readyAt = 0;
      while (Date.now() - killedAt < 60_000) {
        const state = (await container.inspect()).State;
        assert.ok(state.Running, `container stopped after killing the ${daemon} master:\n${await containerLogs(container)}`);
        const ready = await readyBody(ports.http);
        if (ready.status !== 200) sawNotReady = true;
        else {
          const restarts = ready.body?.daemons?.[key]?.restarts;
          const recovered = typeof restarts === 'number' && typeof before === 'number'
            ? restarts > before
            : ((await masterPid(container, comm)) ?? pid) !== pid;
          if (recovered) {
            readyAt = Date.now();
            break;
          }
        }
        await sleep(50);
      }
      assert.ok(readyAt, `/ready did not recover within 60 s after killing the ${daemon} master:\n${(await containerLogs(container)).slice(-4000)}`);

      let auth = await authWorks(ports.submission);
      const authDeadline = Date.now() + 30_000;
      while (!auth.ok && Date.now() < authDeadline) {
        await sleep(250);
        auth = await authWorks(ports.submission);
      }
      const authAt = Date.now();
      assert.ok(auth.ok, `AUTH after restarting ${daemon}: ${auth.detail}`);
      log(`${daemon} master killed: /ready back after ${readyAt - killedAt} ms (saw 503: ${sawNotReady}), AUTH 235 after ${authAt - killedAt} ms`);
      t.diagnostic(`${daemon} recovery: ready ${readyAt - killedAt} ms, auth ${authAt - killedAt} ms`);
    });
  }

  await t.test('the container is still the same running container', async () => {
    const state = (await container.inspect()).State;
    assert.equal(state.Running, true);
    assert.equal(state.Restarting, false);
  });
});

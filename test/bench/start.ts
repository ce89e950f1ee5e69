// Start -> /ready (cold: fresh STATE_DIR; warm: the same STATE_DIR again), broken down by the
// supervisor's own log events, the time until the optional filter is up, and SIGTERM -> exit with
// a message kept in the queue and nothing of the instance left running.
import { rmSync } from 'node:fs';
import { PASSWORD, freePort, processesIn, type Instance, type Sink } from '../helpers/instance.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { statePaths } from '../../src/render/paths.ts';
import { queuedIn } from './baseline.ts';
import { P, USER, events, log, onCleanup, readyBody, startInstance } from './common.ts';
import { comm, groupMembers, pidsMentioning, processGroup } from './proc.ts';
import { fmt, sleep } from './stats.ts';

/** ms after spawn of each phase boundary in one start. */
export interface StartTrial {
  /** First log line (node started, modules imported, config read). */
  firstLine: number;
  /** HTTP server listening (STATE_DIR prepared and rendered: certificate, keys, files). */
  httpListening: number;
  /** `started`: every daemon launched and its own start check passed. */
  started: number;
  /** The supervisor's `ready` event (first probe round passed). */
  readyEvent: number;
  /** The first GET /ready = 200 (polled every 10 ms). */
  ready: number;
  /** /ready 200 with `degraded` empty: the optional filter (rspamd) answers too. */
  complete: number;
}

export interface StopTrial {
  ms: number;
  /** ms after SIGTERM when each daemon's last process was gone (polled every 10 ms). */
  gone: Record<string, number>;
  queuedBefore: number;
  queuedAfter: number;
  leftover: string[];
  code: number | null;
}

export interface StartResults {
  cold: StartTrial[];
  warm: StartTrial[];
  stop: StopTrial[];
  errors: string[];
}

/** Polls /ready until 200, then until `degraded` is empty; phases from the instance's log lines. */
async function measureStart(inst: Instance, t0: number, wall0: number): Promise<StartTrial> {
  let ready = Number.NaN;
  const deadline = t0 + 90_000;
  for (;;) {
    const { status, body } = await readyBody(inst);
    if (status === 200 && Number.isNaN(ready)) ready = performance.now() - t0;
    if (status === 200 && (body.degraded ?? []).length === 0) break;
    if (inst.child?.exitCode !== null && inst.child?.exitCode !== undefined) throw new Error(`relaybox exited (${inst.child.exitCode}): ${inst.lines.slice(-3).join(' | ')}`);
    if (performance.now() > deadline) throw new Error(`not ready and complete within 90 s (ready after ${fmt(ready)} ms)`);
    await sleep(10);
  }
  const complete = performance.now() - t0;
  const ev = events(inst.lines);
  const at = (name: string) => (ev.find((e) => e.event === name)?.at ?? Number.NaN) - wall0;
  return { firstLine: (ev[0]?.at ?? Number.NaN) - wall0, httpListening: at('http_listening'), started: at('started'), readyEvent: at('ready'), ready, complete };
}

/** One authenticated message to an upstream that refuses connections: it stays in the queue. */
async function queueOne(inst: Instance): Promise<void> {
  const { client } = await SmtpClient.connect(inst.ports.submission);
  try {
    await client.ehlo('bench.example');
    await client.starttls();
    const auth = await client.authPlain(USER, PASSWORD);
    if (auth.code !== 235) throw new Error(`AUTH ${auth.code}`);
    const { final } = await client.send(USER, ['kept@sink.example'], message(USER, 'kept@sink.example', 'kept in the queue'));
    if (final.code !== 250) throw new Error(`message refused: ${final.code} ${final.text}`);
  } finally {
    await client.quit();
  }
}

export async function startTrials(sink: Sink): Promise<StartResults> {
  const out: StartResults = { cold: [], warm: [], stop: [], errors: [] };
  for (let i = 0; i < P.startCold; i++) {
    let inst: Instance | undefined;
    try {
      const wall0 = Date.now();
      const t0 = performance.now();
      inst = await startInstance({}, { sink, waitReady: false });
      out.cold.push(await measureStart(inst, t0, wall0));
    } catch (error) {
      out.errors.push(`cold: ${(error as Error).message}`);
    } finally {
      if (inst) {
        await inst.stop();
        rmSync(inst.stateDir, { recursive: true, force: true });
      }
    }
    const t = out.cold.at(-1);
    log(`start cold ${i + 1}/${P.startCold}: ready ${fmt(t?.ready ?? Number.NaN)} ms, filter up ${fmt(t?.complete ?? Number.NaN)} ms`);
  }

  // Warm: the same STATE_DIR again. The upstream refuses connections, so one message stays queued
  // across every stop and start ("queue kept").
  const deadUpstream = await freePort();
  const inst = await startInstance({ RELAY_HOST: `[127.0.0.1]:${deadUpstream}` }, { sink });
  onCleanup(() => inst.stop().then(() => rmSync(inst.stateDir, { recursive: true, force: true })));
  const queue = statePaths(inst.stateDir).queue;
  await queueOne(inst);
  await sleep(500);
  for (let i = 0; i < P.startWarm; i++) {
    try {
      await sleep(300);
      const queuedBefore = queuedIn(queue);
      const daemons = Object.entries((await readyBody(inst)).body.daemons ?? {}).flatMap(([name, d]) => (d.pid === undefined ? [] : [[name, processGroup(d.pid) ?? d.pid] as const]));
      const gone: Record<string, number> = {};
      const s0 = performance.now();
      const stopped = inst.stop();
      let exited = false;
      void stopped.then(() => (exited = true));
      while (!exited && performance.now() - s0 < 15_000) {
        for (const [name, group] of daemons) if (gone[name] === undefined && groupMembers(group).length === 0) gone[name] = performance.now() - s0;
        await sleep(10);
      }
      const code = await stopped;
      const ms = performance.now() - s0;
      for (const [name, group] of daemons) if (gone[name] === undefined && groupMembers(group).length === 0) gone[name] = ms;
      const leftover = [...processesIn(inst.stateDir), ...pidsMentioning(inst.stateDir).map((pid) => `${pid} ${comm(pid)}`)];
      out.stop.push({ ms, gone, queuedBefore, queuedAfter: queuedIn(queue), leftover: [...new Set(leftover)], code });
      inst.lines.length = 0;
      const wall0 = Date.now();
      const t0 = performance.now();
      inst.launch();
      out.warm.push(await measureStart(inst, t0, wall0));
    } catch (error) {
      out.errors.push(`warm: ${(error as Error).message}`);
    }
    const s = out.stop.at(-1);
    log(`start warm ${i + 1}/${P.startWarm}: ready ${fmt(out.warm.at(-1)?.ready ?? Number.NaN)} ms (stop before it ${fmt(s?.ms ?? Number.NaN)} ms, queue ${s?.queuedBefore}→${s?.queuedAfter}, left running ${s?.leftover.length})`);
  }
  await inst.stop();
  rmSync(inst.stateDir, { recursive: true, force: true });
  return out;
}


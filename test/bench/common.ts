// Shared by the bench modules: parameters (full or --quick), logging, cleanup, HTTP polling, the
// relaybox instances, sinks, the load generator process and /proc samplers.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DOMAIN, Instance, PASSWORD, freePort } from '../helpers/instance.ts';
import type { LoadOptions, LoadResult } from './loadgen.ts';
import { cpuSeconds, rssMiB } from './proc.ts';
import { median, percentile, sleep } from './stats.ts';

export const QUICK = process.argv.includes('--quick');
export const HERE = fileURLToPath(new URL('.', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Trials and durations: the full run, or a smoke run that exercises every measurement once. */
export const P = QUICK
  ? { startCold: 1, startWarm: 2, recoveryTrials: 1, containerTrials: 1, idleMs: 3000, warmupMs: 300, durationMs: 1000, reps: 1, rspamdCold: 1, rspamdWarm: 1, opendkimTrials: 1, rssTrials: 1, authSerial: 3, authReps: 1, authMs: 1000, chaosKills: 8, pause: 200 }
  : { startCold: 10, startWarm: 20, recoveryTrials: 10, containerTrials: 10, idleMs: 30_000, warmupMs: 1000, durationMs: 4000, reps: 5, rspamdCold: 3, rspamdWarm: 10, opendkimTrials: 10, rssTrials: 5, authSerial: 50, authReps: 3, authMs: 3000, chaosKills: 120, pause: 700 };
/** `--reps=N`: throughput repetitions per cell, for a shorter check of the full-size runs (the report says how many ran). */
const REPS = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice('--reps='.length));
if (Number.isInteger(REPS) && REPS > 0) P.reps = REPS;

export const USER = `alice@${DOMAIN}`;
export const RCPT = 'rcpt@sink.example';
export const MESSAGE_SIZE = 10 * 1024;

/**
 * Every relaybox instance of the bench gets these: all load comes from one client address
 * (127.0.0.1), which the per-address AUTH rate limit and failure ban would throttle by design.
 * The baseline has neither.
 */
// Limits far above what the bench sends as its one user: the policy service is asked for every
// message, as in production, but never refuses.
export const BENCH_ENV = { AUTH_RATE_LIMIT: '0', AUTH_BAN_THRESHOLD: '0', SEND_LIMIT_MESSAGES: '1000000', SEND_LIMIT_RECIPIENTS: '10000000' };

export function log(message: string): void {
  process.stderr.write(`# [bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const cleanups: Array<() => Promise<void> | void> = [];
export function onCleanup(step: () => Promise<void> | void): void {
  cleanups.push(step);
}
export async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      log(`cleanup: ${(error as Error).message}`);
    }
  }
}

/** Instance.start with the bench's environment, retried: dist/ can be mid-rebuild for a moment. */
export async function startInstance(overrides: Record<string, string>, options: Parameters<typeof Instance.start>[1] = {}): Promise<Instance> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await Instance.start({ ...BENCH_ENV, ...overrides }, options);
    } catch (error) {
      if (attempt >= 3) throw error;
      log(`instance start failed (attempt ${attempt}), retrying: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`);
      await sleep(3000);
    }
  }
}

/** GET over a fresh connection (as a probe would), with its latency. */
export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
      res.on('error', () => resolve({ status: 0, body, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - started }));
    req.end();
  });
}

export interface ReadyBody {
  failing?: string[];
  degraded?: string[];
  daemons?: Record<string, { pid?: number; restarts: number; state: string }>;
}

export async function readyBody(inst: Instance, timeoutMs = 1000): Promise<{ status: number; body: ReadyBody }> {
  const r = await httpGet(inst.url('/ready'), timeoutMs);
  try {
    return { status: r.status, body: JSON.parse(r.body) as ReadyBody };
  } catch {
    return { status: r.status, body: {} };
  }
}

/** Polls /ready every `everyMs` until `accept` (default: status 200); the elapsed ms since `t0`. */
export async function readyAfter(inst: Instance, t0: number, timeoutMs = 30_000, everyMs = 10, accept: (status: number, body: ReadyBody) => boolean = (s) => s === 200): Promise<number> {
  const deadline = t0 + timeoutMs;
  for (;;) {
    const { status, body } = await readyBody(inst);
    if (accept(status, body)) return performance.now() - t0;
    if (inst.child?.exitCode !== null && inst.child?.exitCode !== undefined) throw new Error(`relaybox exited (${inst.child.exitCode}): ${inst.lines.slice(-5).join(' | ')}`);
    if (performance.now() > deadline) throw new Error(`/ready not as expected within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** True once something accepts on the port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Postfix's smtp-sink, counting only (no files): the upstream for the throughput runs. */
export async function countingSink(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('smtp-sink', ['-u', 'postfix', `127.0.0.1:${port}`, '256'], { stdio: 'ignore' });
  onCleanup(() => void child.kill('SIGKILL'));
  for (let i = 0; i < 100; i++) {
    if (await accepts(port)) return { port, child };
    await sleep(50);
  }
  throw new Error(`smtp-sink on ${port} did not start`);
}

/** The TLS sink for the ceiling (a), in its own processes. */
export async function startTlsSink(certFile: string, keyFile: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [`${HERE}tls-sink.ts`, String(port), certFile, keyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(() => void child.kill('SIGTERM'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tls-sink did not start')), 10_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`tls-sink exited ${code}`)));
  });
  return { port, child };
}

/** Runs the load generator in its own process; its JSON result. */
export function runLoadgen(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${HERE}loadgen.ts`, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.warmupMs + options.durationMs + 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult);
      } catch {
        reject(new Error(`loadgen exited ${code} without a result: ${out.slice(0, 200)}`));
      }
    });
  });
}

export function loadOptions(port: number, concurrency: number, perConnection: number, over: Partial<LoadOptions> = {}): LoadOptions {
  return { port, concurrency, perConnection, durationMs: P.durationMs, warmupMs: P.warmupMs, maxMessages: 20_000, user: USER, password: PASSWORD, from: USER, to: RCPT, size: MESSAGE_SIZE, ...over };
}

export async function drained(what: string, queued: () => number, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (queued() === 0) return true;
    await sleep(100);
  }
  log(`${what}: queue not empty after ${timeoutMs / 1000} s (${queued()} files)`);
  return false;
}

export interface PollStats {
  p50: number;
  p99: number;
  samples: number;
  failures: number;
  /** Every latency (ms), so that runs can be pooled. */
  values: number[];
}

export function pollStats(latencies: number[], failures: number): PollStats {
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), samples: latencies.length, failures, values: latencies };
}

/** Polls /health and /ready alternately (fresh connection each time) until stopped. */
export function httpPoller(baseUrl: string, everyMs = 50): { stop: () => Promise<{ health: PollStats; ready: PollStats }> } {
  const lat = { health: [] as number[], ready: [] as number[] };
  const failed = { health: 0, ready: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const path of ['health', 'ready'] as const) {
        const r = await httpGet(`${baseUrl}/${path}`, 2000);
        if (r.status === 200) lat[path].push(r.ms);
        else failed[path] += 1;
      }
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { health: pollStats(lat.health, failed.health), ready: pollStats(lat.ready, failed.ready) };
    },
  };
}

/** Samples RSS of `pid` every `everyMs`; CPU seconds are taken from the start/end difference. */
export function footprintSampler(pid: number, everyMs = 500): { stop: () => { cpu: number; rssMax: number; rssMedian: number; seconds: number } } {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const rss: number[] = [rssMiB(pid)];
  const timer = setInterval(() => rss.push(rssMiB(pid)), everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      rss.push(rssMiB(pid));
      return { cpu: cpuSeconds(pid) - cpu0, rssMax: Math.max(...rss), rssMedian: median(rss), seconds: (performance.now() - t0) / 1000 };
    },
  };
}

/** Fisher–Yates, in place. */
export function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Log lines of an instance parsed as JSON, with their time in ms since the epoch. */
export function events(lines: string[]): Array<Record<string, unknown> & { at: number }> {
  return lines.flatMap((line) => {
    try {
      const e = JSON.parse(line) as Record<string, unknown>;
      return [{ ...e, at: typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN }];
    } catch {
      return [];
    }
  });
}

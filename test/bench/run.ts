// relaybox benchmarks: start -> ready, crash recovery, authenticated submission throughput against
// a ceiling (a) and a hand-written Postfix + Dovecot baseline (b), supervisor footprint.
//
//   npm run bench                      # the full run (about 8 minutes on 2 cores)
//   node test/bench/run.ts --quick     # smoke: every measurement once, minimal load
//
// Prints a markdown report and writes it to BENCHMARKS.md (not in --quick mode unless --write).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, Sink, freePort, hashOf } from '../helpers/instance.ts';
import { statePaths } from '../../src/render/paths.ts';
import { Baseline, queuedIn } from './baseline.ts';
import { authOnce, ehloAfterTls, type LoadOptions, type LoadResult } from './loadgen.ts';
import { comm, cpuSeconds, groupMembers, groupsCpuSeconds, readPid, rssMiB } from './proc.ts';
import { fmt, median, medP95, percentile, ratio, sleep } from './stats.ts';
import { containerStartTrials, type ContainerResult } from './container.ts';

const QUICK = process.argv.includes('--quick');
const LOADAVG_START = loadavg()[0]!.toFixed(2);
const WRITE = !QUICK || process.argv.includes('--write');
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const P = QUICK
  ? { startTrials: 1, recoveryTrials: 1, idleMs: 3000, warmupMs: 300, durationMs: 1000, concurrency: [1, 8, 32], perConnection: [1, 20], containerTrials: 1 }
  : { startTrials: 10, recoveryTrials: 10, idleMs: 60_000, warmupMs: 1000, durationMs: 5000, concurrency: [1, 8, 32], perConnection: [1, 20], containerTrials: 10 };

const USER = `alice@${DOMAIN}`;
const RCPT = 'rcpt@sink.example';
const MESSAGE_SIZE = 10 * 1024;
const RELAUNCH_READY_TIMEOUT_MS = 30_000;
const RECOVERY_TIMEOUT_MS = 30_000;
/**
 * Every relaybox instance of the bench gets these: all load comes from one client address
 * (127.0.0.1), which the per-address AUTH rate limit and failure ban (when the build has them; unknown
 * variables are ignored) would throttle by design. The baseline has neither.
 */
const BENCH_ENV = { AUTH_RATE_LIMIT: '0', AUTH_BAN_THRESHOLD: '0' };

/** Instance.start, retried: dist/ can be mid-rebuild by someone else for a moment. */
async function startInstance(overrides: Record<string, string>, options: Parameters<typeof Instance.start>[1] = {}): Promise<Instance> {
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

function log(message: string): void {
  process.stderr.write(`# [bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---------------------------------------------------------------- cleanup

const cleanups: Array<() => Promise<void> | void> = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      log(`cleanup: ${(error as Error).message}`);
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

// ---------------------------------------------------------------- helpers

/** GET over a fresh connection (as a probe would), with its latency. */
function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string; ms: number }> {
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

/** Polls /ready every `everyMs` until 200; the elapsed ms since `t0`. */
async function readyAfter(inst: Instance, t0: number, timeoutMs = RELAUNCH_READY_TIMEOUT_MS, everyMs = 10): Promise<number> {
  const deadline = t0 + timeoutMs;
  for (;;) {
    const r = await httpGet(inst.url('/ready'), 1000);
    if (r.status === 200) return performance.now() - t0;
    if (inst.child?.exitCode !== null && inst.child?.exitCode !== undefined) throw new Error(`relaybox exited (${inst.child.exitCode}): ${inst.lines.slice(-5).join(' | ')}`);
    if (performance.now() > deadline) throw new Error(`/ready not 200 within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

interface ReadyBody {
  daemons?: Record<'postfix' | 'dovecot', { pid?: number; restarts: number; state: string }>;
}

async function readyBody(inst: Instance): Promise<{ status: number; body: ReadyBody }> {
  const r = await httpGet(inst.url('/ready'), 1000);
  try {
    return { status: r.status, body: JSON.parse(r.body) as ReadyBody };
  } catch {
    return { status: r.status, body: {} };
  }
}

/** Postfix's smtp-sink, counting only (no files): the upstream for the throughput runs. */
async function countingSink(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('smtp-sink', ['-u', 'postfix', `127.0.0.1:${port}`, '256'], { stdio: 'ignore' });
  cleanups.push(() => void child.kill('SIGKILL'));
  for (let i = 0; i < 100; i++) {
    if ((await httpGetRaw(port)) === true) return { port, child };
    await sleep(50);
  }
  throw new Error(`smtp-sink on ${port} did not start`);
}

/** True once something accepts on the port. */
function httpGetRaw(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    import('node:net').then(({ connect }) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  });
}

/** The TLS sink for the ceiling (a), in its own processes. */
async function startTlsSink(certFile: string, keyFile: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [`${HERE}tls-sink.ts`, String(port), certFile, keyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => void child.kill('SIGTERM'));
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
function runLoadgen(options: LoadOptions): Promise<LoadResult> {
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

async function drained(what: string, queued: () => number, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (queued() === 0) return true;
    await sleep(100);
  }
  log(`${what}: queue not empty after ${timeoutMs / 1000} s (${queued()} files)`);
  return false;
}

/** Samples /health latency (fresh connection each time) until stopped. */
function healthPoller(url: string, everyMs = 50): { stop: () => Promise<{ latencies: number[]; failures: number }> } {
  const latencies: number[] = [];
  let failures = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await httpGet(url, 2000);
      if (r.status === 200) latencies.push(r.ms);
      else failures += 1;
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { latencies, failures };
    },
  };
}

/** Samples RSS of `pid` every `everyMs`; CPU seconds are taken from the start/end difference. */
function footprintSampler(pid: number, everyMs = 500): { stop: () => { cpu: number; rssMax: number; rssMedian: number; seconds: number } } {
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

// ---------------------------------------------------------------- 1. start -> ready

interface StartResults {
  cold: number[];
  warm: number[];
  stop: number[];
  errors: string[];
}

async function startTrials(sink: Sink): Promise<StartResults> {
  const out: StartResults = { cold: [], warm: [], stop: [], errors: [] };
  // Cold: a fresh STATE_DIR each time (generates the self-signed certificate, creates the queue).
  for (let i = 0; i < P.startTrials; i++) {
    let inst: Instance | undefined;
    try {
      const t0 = performance.now();
      inst = await startInstance({}, { sink, waitReady: false });
      out.cold.push(await readyAfter(inst, t0));
    } catch (error) {
      out.errors.push(`cold: ${(error as Error).message}`);
    } finally {
      if (inst) {
        await inst.stop();
        rmSync(inst.stateDir, { recursive: true, force: true });
      }
    }
    log(`start->ready cold ${i + 1}/${P.startTrials}: ${fmt(out.cold.at(-1) ?? Number.NaN)} ms`);
  }
  // Warm: the same STATE_DIR again (a restart of an existing installation); also times SIGTERM -> exit.
  const inst = await startInstance({}, { sink });
  cleanups.push(() => inst.stop().then(() => rmSync(inst.stateDir, { recursive: true, force: true })));
  for (let i = 0; i < P.startTrials; i++) {
    try {
      await sleep(300);
      const s0 = performance.now();
      await inst.stop();
      out.stop.push(performance.now() - s0);
      inst.lines.length = 0;
      const t0 = performance.now();
      inst.launch();
      out.warm.push(await readyAfter(inst, t0));
    } catch (error) {
      out.errors.push(`warm: ${(error as Error).message}`);
    }
    log(`start->ready warm ${i + 1}/${P.startTrials}: ${fmt(out.warm.at(-1) ?? Number.NaN)} ms (stop ${fmt(out.stop.at(-1) ?? Number.NaN)} ms)`);
  }
  await inst.stop();
  rmSync(inst.stateDir, { recursive: true, force: true });
  return out;
}

// ---------------------------------------------------------------- 2. recovery

type Victim = 'postfix master' | 'dovecot master' | 'dovecot auth';

interface RecoveryResults {
  times: Record<Victim, number[]>;
  notReadySeen: Record<Victim, number>;
  restarts: Record<Victim, number>;
  errors: string[];
}

function victimPid(inst: Instance, victim: Victim): number | undefined {
  const paths = statePaths(inst.stateDir);
  if (victim === 'postfix master') return readPid(paths.masterPid);
  const dovecot = readPid(`${paths.dovecotBase}/master.pid`);
  if (victim === 'dovecot master' || dovecot === undefined) return dovecot;
  return groupMembers(dovecot, 'auth')[0];
}

async function recoveryTrials(sink: Sink): Promise<RecoveryResults> {
  const victims: Victim[] = ['postfix master', 'dovecot master', 'dovecot auth'];
  const out: RecoveryResults = {
    times: { 'postfix master': [], 'dovecot master': [], 'dovecot auth': [] },
    notReadySeen: { 'postfix master': 0, 'dovecot master': 0, 'dovecot auth': 0 },
    restarts: { 'postfix master': 0, 'dovecot master': 0, 'dovecot auth': 0 },
    errors: [],
  };
  const inst = await startInstance({}, { sink });
  cleanups.push(() => inst.stop().then(() => rmSync(inst.stateDir, { recursive: true, force: true })));
  const port = inst.ports.submission;
  for (const victim of victims) {
    for (let i = 0; i < P.recoveryTrials; i++) {
      try {
        // A fresh supervisor per trial: the supervisor's restart backoff (0 ms for the first restart,
        // then doubling) would otherwise be what repeated trials measure.
        await inst.stop();
        inst.lines.length = 0;
        inst.launch();
        await readyAfter(inst, performance.now());
        if (!(await authOnce(port, USER, PASSWORD, 5000))) throw new Error('AUTH failed before the kill');
        await sleep(200);
        const before = (await readyBody(inst)).body.daemons;
        const pid = victimPid(inst, victim);
        if (pid === undefined) throw new Error(`no ${victim} process found`);
        if (victim === 'dovecot auth' && comm(pid) !== 'auth') throw new Error(`pid ${pid} is ${comm(pid)}, not auth`);
        const t0 = performance.now();
        process.kill(pid, 'SIGKILL');
        let sawNotReady = false;
        for (;;) {
          if (performance.now() - t0 > RECOVERY_TIMEOUT_MS) throw new Error(`not recovered within ${RECOVERY_TIMEOUT_MS} ms`);
          const { status, body } = await readyBody(inst);
          if (status !== 200) sawNotReady = true;
          const daemon = victim === 'postfix master' ? 'postfix' : 'dovecot';
          const restarted = (body.daemons?.[daemon]?.restarts ?? 0) > (before?.[daemon]?.restarts ?? 0);
          // A master kill is recovered once the supervisor has started the daemon again; the auth
          // process is respawned by Dovecot's master on demand, without the supervisor.
          if (status === 200 && (victim === 'dovecot auth' || restarted) && (await authOnce(port, USER, PASSWORD, 3000))) {
            out.times[victim].push(performance.now() - t0);
            if (sawNotReady) out.notReadySeen[victim] += 1;
            if (restarted) out.restarts[victim] += 1;
            break;
          }
          await sleep(20);
        }
      } catch (error) {
        out.errors.push(`${victim}: ${(error as Error).message}`);
      }
      log(`recovery ${victim} ${i + 1}/${P.recoveryTrials}: ${fmt(out.times[victim].at(-1) ?? Number.NaN)} ms`);
    }
  }
  await inst.stop();
  rmSync(inst.stateDir, { recursive: true, force: true });
  return out;
}

// ---------------------------------------------------------------- 3 + 4. throughput and footprint

type Target = 'ceiling' | 'baseline' | 'relaybox';

interface LoadRow {
  concurrency: number;
  perConnection: number;
  results: Record<Target, LoadResult | undefined>;
  health?: { p50: number; p99: number; samples: number; failures: number };
  supervisor?: { cpu: number; rssMax: number; seconds: number; logLines: number };
  drainedBefore: Record<Target, boolean>;
  /** CPU ms per accepted message, from the start of the load until the queue was empty again. */
  cpuPerMessage: Partial<Record<Target, { daemons: number; supervisor: number }>>;
}

interface Footprint {
  idle: { cpu: number; rssMax: number; rssMedian: number; seconds: number; health: { p50: number; p99: number; samples: number } };
}

interface TicketCheck {
  /** ms from the end of the TLS handshake to the 250 of the first EHLO, fresh sessions. */
  firstReply: Record<Target | 'baselineNoTickets', number[]>;
  /** baseline (b) with tls_config_file NumTickets = 0: 1 client and 8 clients, 1 msg/conn. */
  load: Array<{ concurrency: number; result: LoadResult | undefined }>;
}

interface Diagnosis {
  concurrency: number;
  perConnection: number;
  baseline?: { result: LoadResult; cpu: { daemons: number; supervisor: number } };
  relaybox?: { result: LoadResult; cpu: { daemons: number; supervisor: number } };
}

interface ThroughputResults {
  tickets: TicketCheck;
  diagnosis: Diagnosis[];
  rows: LoadRow[];
  footprint: Footprint;
  mainCfDiff: string;
}

async function throughput(): Promise<ThroughputResults> {
  const rbSink = await countingSink();
  const blSink = await countingSink();
  const inst = await startInstance({ RELAY_HOST: `[127.0.0.1]:${rbSink.port}` });
  cleanups.push(() => inst.destroy());
  const supervisorPid = inst.child!.pid!;
  const paths = statePaths(inst.stateDir);
  // The same certificate and key (relaybox's generated RSA-2048 pair) for all three targets.
  const certFile = paths.generatedCert;
  const keyFile = paths.generatedKey;

  // Idle footprint first, with nothing else running.
  log(`idle footprint: ${P.idleMs / 1000} s`);
  await sleep(QUICK ? 500 : 3000);
  inst.lines.length = 0;
  const idleSampler = footprintSampler(supervisorPid, 1000);
  const idleHealth = healthPoller(inst.url('/health'), 250);
  await sleep(P.idleMs);
  const idleH = await idleHealth.stop();
  const idleF = idleSampler.stop();
  const footprint: Footprint = { idle: { ...idleF, health: { p50: percentile(idleH.latencies, 50), p99: percentile(idleH.latencies, 99), samples: idleH.latencies.length } } };

  const baselinePort = await freePort();
  const baseline = await Baseline.start({ port: baselinePort, sinkPort: blSink.port, hostname: HOSTNAME, certFile, keyFile, users: [{ address: USER, hash: hashOf(PASSWORD) }] });
  cleanups.push(() => baseline.stop());
  const ceiling = await startTlsSink(certFile, keyFile);

  const ports: Record<Target, number> = { ceiling: ceiling.port, baseline: baselinePort, relaybox: inst.ports.submission };
  const queued: Record<Target, () => number> = { ceiling: () => 0, baseline: () => baseline.queued(), relaybox: () => queuedIn(paths.queue) };
  // Process groups of the daemons (each master leads its own group).
  const daemonGroups: Record<Target, () => number[]> = {
    ceiling: () => [],
    baseline: () => [readPid(`${baseline.dir}/queue/pid/master.pid`), readPid(`${baseline.dir}/run/master.pid`)].filter((p): p is number => p !== undefined),
    relaybox: () => [readPid(paths.masterPid), readPid(`${paths.dovecotBase}/master.pid`)].filter((p): p is number => p !== undefined),
  };
  for (const target of ['baseline', 'relaybox'] as Target[]) {
    if (!(await authOnce(ports[target], USER, PASSWORD, 5000))) throw new Error(`${target}: AUTH does not work`);
  }

  const rows: LoadRow[] = [];
  for (const perConnection of P.perConnection) {
    for (const concurrency of P.concurrency) {
      const row: LoadRow = { concurrency, perConnection, results: { ceiling: undefined, baseline: undefined, relaybox: undefined }, drainedBefore: { ceiling: true, baseline: true, relaybox: true }, cpuPerMessage: {} };
      // Interleaved, so a noisy moment hits one cell rather than one column.
      for (const target of ['ceiling', 'baseline', 'relaybox'] as Target[]) {
        row.drainedBefore[target] = await drained(target, queued[target]);
        await sleep(QUICK ? 200 : 1000);
        const options: LoadOptions = {
          port: ports[target],
          concurrency,
          perConnection,
          durationMs: P.durationMs,
          warmupMs: P.warmupMs,
          maxMessages: 20_000,
          user: USER,
          password: PASSWORD,
          from: USER,
          to: RCPT,
          size: MESSAGE_SIZE,
        };
        let health: ReturnType<typeof healthPoller> | undefined;
        let sampler: ReturnType<typeof footprintSampler> | undefined;
        const lines0 = inst.lines.length;
        if (target === 'relaybox') {
          health = healthPoller(inst.url('/health'), 50);
          sampler = footprintSampler(supervisorPid);
        }
        const groups = daemonGroups[target]();
        const daemonCpu0 = groupsCpuSeconds(groups);
        const supervisorCpu0 = cpuSeconds(supervisorPid);
        try {
          row.results[target] = await runLoadgen(options);
        } catch (error) {
          log(`${target} c=${concurrency} m=${perConnection}: ${(error as Error).message}`);
        }
        if (health && sampler) {
          const h = await health.stop();
          const f = sampler.stop();
          row.health = { p50: percentile(h.latencies, 50), p99: percentile(h.latencies, 99), samples: h.latencies.length, failures: h.failures };
          row.supervisor = { cpu: f.cpu, rssMax: f.rssMax, seconds: f.seconds, logLines: inst.lines.length - lines0 };
          inst.lines.length = 0;
        }
        const r = row.results[target];
        if (target !== 'ceiling' && r && r.total > 0) {
          await drained(target, queued[target]);
          row.cpuPerMessage[target] = {
            daemons: ((groupsCpuSeconds(groups) - daemonCpu0) * 1000) / r.total,
            supervisor: target === 'relaybox' ? ((cpuSeconds(supervisorPid) - supervisorCpu0) * 1000) / r.total : 0,
          };
        }
        log(`load ${target} c=${concurrency} m/conn=${perConnection}: ${r ? `${fmt(r.perSecond, 1)} msg/s, p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms, errors ${r.errors}${r.firstErrors.length ? ` (${r.firstErrors[0]})` : ''}` : 'failed'}`);
      }
      rows.push(row);
    }
  }
  await drained('relaybox', queued.relaybox);
  await drained('baseline', queued.baseline);
  const mainCfDiff = diffMainCf(paths.mainCf, `${baseline.configDir}/main.cf`);

  // The ~40 ms in every new session: Postfix 3.7 sends one TLS 1.3 session ticket after the
  // handshake; the reply to the next command waits behind it (Nagle) for the client's delayed ACK.
  log('TLS 1.3 session ticket check');
  const sessions = QUICK ? 3 : 10;
  const firstReply: TicketCheck['firstReply'] = {
    ceiling: await ehloAfterTls(ceiling.port, sessions),
    baseline: await ehloAfterTls(baselinePort, sessions),
    relaybox: await ehloAfterTls(inst.ports.submission, sessions),
    baselineNoTickets: [],
  };
  // A second baseline, identical but for an OpenSSL configuration that issues no TLS 1.3 tickets.
  const noTicketsPort = await freePort();
  const noTickets = await Baseline.start({
    port: noTicketsPort,
    sinkPort: blSink.port,
    hostname: HOSTNAME,
    certFile,
    keyFile,
    users: [{ address: USER, hash: hashOf(PASSWORD) }],
    // Both are needed: with a ticket cipher set, Postfix itself asks OpenSSL for one ticket.
    extraMainCf: [`tls_config_file = ${HERE}baseline/openssl-no-tickets.cnf`, 'tls_config_name = postfix', 'tls_session_ticket_cipher ='],
  });
  cleanups.push(() => noTickets.stop());
  firstReply.baselineNoTickets = await ehloAfterTls(noTicketsPort, sessions);
  const ticketLoad: TicketCheck['load'] = [];
  for (const concurrency of [1, 8]) {
    await sleep(QUICK ? 200 : 1000);
    const result = await runLoadgen({ port: noTicketsPort, concurrency, perConnection: 1, durationMs: P.durationMs, warmupMs: P.warmupMs, maxMessages: 20_000, user: USER, password: PASSWORD, from: USER, to: RCPT, size: MESSAGE_SIZE }).catch(() => undefined);
    ticketLoad.push({ concurrency, result });
    log(`load baseline+NumTickets=0 c=${concurrency} m/conn=1: ${result ? `${fmt(result.perSecond, 1)} msg/s, p50 ${fmt(result.p50, 1)} ms` : 'failed'}`);
  }

  // Diagnosis of the gap at many messages per connection: the same relaybox instance with one
  // rendered setting changed (smtp_tls_CAfile removed; Postfix restarted by the supervisor after a
  // kill -9 of its master), next to baseline (b) again.
  log('diagnosis: relaybox without smtp_tls_CAfile');
  const diagnosis: Diagnosis[] = [];
  const restartsBefore = ((await readyBody(inst)).body.daemons?.postfix.restarts ?? 0);
  execFileSync('postconf', ['-c', paths.postfix, '-e', 'smtp_tls_CAfile =']);
  const master = readPid(paths.masterPid);
  if (master !== undefined) process.kill(master, 'SIGKILL');
  const restartDeadline = Date.now() + 30_000;
  while (Date.now() < restartDeadline) {
    const { status, body } = await readyBody(inst);
    if (status === 200 && (body.daemons?.postfix.restarts ?? 0) > restartsBefore) break;
    await sleep(50);
  }
  await sleep(QUICK ? 500 : 2000);
  for (const concurrency of [8, 32]) {
    const entry: Diagnosis = { concurrency, perConnection: 20 };
    for (const target of ['baseline', 'relaybox'] as const) {
      await drained(target, queued[target]);
      await sleep(QUICK ? 200 : 1000);
      const groups = daemonGroups[target]();
      const cpu0 = groupsCpuSeconds(groups);
      const sup0 = cpuSeconds(supervisorPid);
      const result = await runLoadgen({ port: ports[target], concurrency, perConnection: 20, durationMs: P.durationMs, warmupMs: P.warmupMs, maxMessages: 20_000, user: USER, password: PASSWORD, from: USER, to: RCPT, size: MESSAGE_SIZE }).catch(() => undefined);
      inst.lines.length = 0;
      if (result && result.total > 0) {
        await drained(target, queued[target]);
        const cpu = { daemons: ((groupsCpuSeconds(groups) - cpu0) * 1000) / result.total, supervisor: target === 'relaybox' ? ((cpuSeconds(supervisorPid) - sup0) * 1000) / result.total : 0 };
        if (target === 'baseline') entry.baseline = { result, cpu };
        else entry.relaybox = { result, cpu };
      }
      log(`diagnosis ${target} c=${concurrency} m/conn=20: ${result ? `${fmt(result.perSecond, 1)} msg/s, p99 ${fmt(result.p99, 1)} ms` : 'failed'}`);
    }
    diagnosis.push(entry);
  }
  return { tickets: { firstReply, load: ticketLoad }, diagnosis, rows, footprint, mainCfDiff };
}

/** `postconf -n` of both configurations, side by side where they differ (TLS, SASL, logging lines). */
function diffMainCf(relayboxMainCf: string, baselineMainCf: string): string {
  const read = (file: string) => {
    const dir = file.replace(/\/main\.cf$/, '');
    const out = execFileSync('postconf', ['-c', dir, '-n'], { encoding: 'utf8' });
    return new Map(
      out
        .split('\n')
        .map((line) => /^(\S+) =\s?(.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[2]!] as const),
    );
  };
  const rb = read(relayboxMainCf);
  const bl = read(baselineMainCf);
  const interesting = /tls|sasl|log|cache|restrictions|maps|header|limit/;
  const keys = [...new Set([...rb.keys(), ...bl.keys()])].filter((k) => interesting.test(k) && rb.get(k) !== bl.get(k)).sort();
  return keys.map((k) => `| \`${k}\` | ${short(rb.get(k))} | ${short(bl.get(k))} |`).join('\n');
}

function short(value: string | undefined): string {
  if (value === undefined) return '(default)';
  if (value === '') return '(empty)';
  const v = value.replace(/\/tmp\/[^/\s,]+/g, '…').replace(/\|/g, '\\|');
  return `\`${v.length > 60 ? `${v.slice(0, 57)}...` : v}\``;
}

// ---------------------------------------------------------------- report

function versions() {
  const cmd = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '?';
    }
  };
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: cpus()[0]?.model ?? '?',
    cores: availableParallelism(),
    kernel: release(),
    node: process.version,
    postfix: cmd('postconf', ['-dh', 'mail_version']),
    dovecot: cmd('dovecot', ['--version']).split(' ')[0],
    commit: cmd('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    dirty: cmd('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) !== '',
  };
}

function loadCell(r: LoadResult | undefined): string {
  if (!r) return 'failed';
  const stalls = Object.entries(r.stalls ?? {}).map(([verb, count]) => `${count}× ${verb}`);
  return `${fmt(r.perSecond, 1)}${r.errors ? ` (**${r.errors} errors**)` : ''}${stalls.length ? ` (≥0.9 s stalls: ${stalls.join(', ')})` : ''}`;
}

function cpuCell(c: { daemons: number; supervisor: number } | undefined): string {
  if (!c) return 'n/a';
  return c.supervisor > 0 ? `${fmt(c.daemons, 2)} + ${fmt(c.supervisor, 2)}` : fmt(c.daemons, 2);
}

function latencyCell(r: LoadResult | undefined): string {
  return r ? `${fmt(r.p50, 1)} / ${fmt(r.p99, 1)}` : 'n/a';
}

function report(start: StartResults, container: ContainerResult, recovery: RecoveryResults, tp: ThroughputResults): string {
  const v = versions();
  const n = (values: number[], planned: number) => `${values.length}${values.length < planned ? ` of ${planned}` : ''}`;
  const lines: string[] = [];
  lines.push(`# relaybox benchmarks${QUICK ? ' (--quick smoke run: single trials, tiny load; not representative)' : ''}`);
  lines.push('');
  lines.push(`- Date: ${v.date}; commit ${v.commit}${v.dirty ? ' (src/ had uncommitted changes; dist/ as built from the working tree)' : ''}`);
  lines.push(`- Load average (1 min) at the start and the end of the run: ${LOADAVG_START} and ${loadavg()[0]!.toFixed(2)} (other work on the machine makes single figures noisy; the side-by-side ratios are what counts)`);
  lines.push(`- Machine: ${v.cpu}, ${v.cores} cores, Linux ${v.kernel}`);
  lines.push(`- Node ${v.node}, Postfix ${v.postfix}, Dovecot ${v.dovecot}`);
  lines.push(`- Command: \`${QUICK ? 'node test/bench/run.ts --quick' : 'npm run bench'}\` (as root, after \`npm run build\`)`);
  lines.push('');
  lines.push('## Start, stop and recovery (host mode)');
  lines.push('');
  lines.push('| Measurement | median / p95 | trials | notes |');
  lines.push('| --- | --- | --- | --- |');
  lines.push(`| Start → /ready 200, cold (fresh STATE_DIR) | ${medP95(start.cold)} | ${n(start.cold, P.startTrials)} | spawn of \`node dist/cli.js run\` to the first 200; includes generating the self-signed certificate |`);
  lines.push(`| Start → /ready 200, warm (existing STATE_DIR) | ${medP95(start.warm)} | ${n(start.warm, P.startTrials)} | a restart of an existing installation |`);
  lines.push(`| Container start → /ready 200 | ${container.ready.length ? medP95(container.ready) : container.note} | ${container.ready.length ? n(container.ready, P.containerTrials) : '0'} | ${container.ready.length ? container.note : ''} |`);
  lines.push(`| Container start → healthy | ${container.healthy.length ? medP95(container.healthy) : container.ready.length ? 'n/a' : container.note} | ${container.healthy.length ? n(container.healthy, P.containerTrials) : '0'} | ${container.healthy.length ? 'with `--health-interval=250ms` (the image says 30 s; with it, healthy comes at the first check ≈30 s)' : ''} |`);
  lines.push(`| SIGTERM → supervisor exit | ${medP95(start.stop)} | ${n(start.stop, P.startTrials)} | \`postfix stop\` + Dovecot, queue kept |`);
  for (const victim of ['postfix master', 'dovecot master', 'dovecot auth'] as Victim[]) {
    const t = recovery.times[victim];
    const how =
      victim === 'dovecot auth'
        ? `Dovecot's master respawns auth on demand; supervisor restarted Dovecot in ${recovery.restarts[victim]} of ${t.length}; /ready went 503 in ${recovery.notReadySeen[victim]}`
        : `until the supervisor has restarted ${victim.split(' ')[0]}, /ready is 200 and a fresh AUTH succeeds; /ready seen 503 in ${recovery.notReadySeen[victim]} of ${t.length}`;
    lines.push(`| Recovery after \`kill -9\` of the ${victim} | ${medP95(t)} | ${n(t, P.recoveryTrials)} | ${how} |`);
  }
  if (start.errors.length || recovery.errors.length || container.errors.length) {
    lines.push('');
    lines.push(`Failed trials: ${[...start.errors, ...container.errors, ...recovery.errors].map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  }
  lines.push('');
  lines.push(`## Authenticated submission throughput (port 587: STARTTLS + AUTH PLAIN + ${MESSAGE_SIZE / 1024} KB message)`);
  lines.push('');
  lines.push(`Each cell: ${P.warmupMs / 1000} s warm-up, then ${P.durationMs / 1000} s measured; the three targets run interleaved, each with its own idle upstream. messages/s (errors, if any); latency p50 / p99 in ms.`);
  lines.push('');
  lines.push('| clients | msgs/conn | ceiling (a) msg/s | baseline (b) msg/s | relaybox msg/s | relaybox / (b) | relaybox / (a) | latency (a) | latency (b) | latency relaybox | CPU ms/msg (b) | CPU ms/msg relaybox: daemons + supervisor | /health p50 / p99 ms | supervisor CPU s (% of a core) | supervisor log lines/s |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const below: string[] = [];
  for (const row of tp.rows) {
    const { ceiling, baseline, relaybox } = row.results;
    const rb = relaybox?.perSecond ?? Number.NaN;
    const bl = baseline?.perSecond ?? Number.NaN;
    if (rb < bl * 0.9) below.push(`${row.concurrency} clients × ${row.perConnection} msgs/conn: ${ratio(rb, bl)}`);
    const s = row.supervisor;
    lines.push(
      `| ${row.concurrency} | ${row.perConnection} | ${loadCell(ceiling)} | ${loadCell(baseline)} | ${loadCell(relaybox)} | ${ratio(rb, bl)} | ${ratio(rb, ceiling?.perSecond ?? Number.NaN)} | ${latencyCell(ceiling)} | ${latencyCell(baseline)} | ${latencyCell(relaybox)} | ${cpuCell(row.cpuPerMessage.baseline)} | ${cpuCell(row.cpuPerMessage.relaybox)} | ${row.health ? `${fmt(row.health.p50, 1)} / ${fmt(row.health.p99, 1)}${row.health.failures ? ` (**${row.health.failures} failed**)` : ''}` : 'n/a'} | ${s ? `${fmt(s.cpu, 2)} (${fmt((s.cpu / s.seconds) * 100, 0)}%)` : 'n/a'} | ${s ? fmt(s.logLines / s.seconds, 0) : 'n/a'} |`,
    );
  }
  const errs = tp.rows.flatMap((row) => (['ceiling', 'baseline', 'relaybox'] as Target[]).flatMap((t) => (row.results[t]?.firstErrors ?? []).slice(0, 1).map((e) => `${t} c=${row.concurrency} m=${row.perConnection}: ${e}`)));
  if (errs.length) {
    lines.push('');
    lines.push(`First errors: ${errs.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  }
  lines.push('');
  lines.push(below.length ? `**relaybox is more than 10% below baseline (b) in: ${below.join('; ')}** (see the analysis below).` : 'relaybox is within 10% of baseline (b) in every cell.');
  lines.push('');
  lines.push('## Supervisor footprint (the `node dist/cli.js run` process only, from /proc)');
  lines.push('');
  const idle = tp.footprint.idle;
  const loaded = tp.rows.map((r) => r.supervisor).filter((s): s is NonNullable<LoadRow['supervisor']> => s !== undefined);
  const loadCpu = loaded.reduce((a, s) => a + s.cpu, 0);
  const loadSeconds = loaded.reduce((a, s) => a + s.seconds, 0);
  const healthLoad = tp.rows.map((r) => r.health?.p99 ?? Number.NaN).filter(Number.isFinite);
  lines.push('| Measurement | value |');
  lines.push('| --- | --- |');
  lines.push(`| RSS at idle (median / max over ${fmt(idle.seconds, 0)} s) | ${fmt(idle.rssMedian, 1)} / ${fmt(idle.rssMax, 1)} MiB |`);
  lines.push(`| CPU at idle | ${fmt(idle.cpu, 2)} s over ${fmt(idle.seconds, 0)} s (${fmt((idle.cpu / idle.seconds) * 100, 2)}% of a core) |`);
  lines.push(`| /health at idle, p50 / p99 | ${fmt(idle.health.p50, 1)} / ${fmt(idle.health.p99, 1)} ms (${idle.health.samples} samples) |`);
  lines.push(`| RSS during load (max over all relaybox runs) | ${fmt(Math.max(...loaded.map((s) => s.rssMax)), 1)} MiB |`);
  lines.push(`| CPU during load (all relaybox runs) | ${fmt(loadCpu, 2)} s over ${fmt(loadSeconds, 0)} s (${fmt((loadCpu / loadSeconds) * 100, 1)}% of a core) |`);
  lines.push(`| /health p99 during load (worst run / median of runs) | ${fmt(Math.max(...healthLoad), 1)} / ${fmt(median(healthLoad), 1)} ms |`);
  lines.push('');
  lines.push('## Diagnosis: relaybox with `smtp_tls_CAfile` removed (same instance, Postfix restarted), next to baseline (b) again');
  lines.push('');
  lines.push('| clients | msgs/conn | baseline (b) msg/s | relaybox without `smtp_tls_CAfile` msg/s | relaybox / (b) | latency (b) | latency relaybox | CPU ms/msg (b) | CPU ms/msg relaybox: daemons + supervisor | same cell as rendered (table above): relaybox / (b), CPU ms/msg |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const d of tp.diagnosis) {
    const before = tp.rows.find((r) => r.concurrency === d.concurrency && r.perConnection === d.perConnection);
    lines.push(
      `| ${d.concurrency} | ${d.perConnection} | ${loadCell(d.baseline?.result)} | ${loadCell(d.relaybox?.result)} | ${ratio(d.relaybox?.result.perSecond ?? Number.NaN, d.baseline?.result.perSecond ?? Number.NaN)} | ${latencyCell(d.baseline?.result)} | ${latencyCell(d.relaybox?.result)} | ${cpuCell(d.baseline?.cpu)} | ${cpuCell(d.relaybox?.cpu)} | ${before ? `${ratio(before.results.relaybox?.perSecond ?? Number.NaN, before.results.baseline?.perSecond ?? Number.NaN)}, ${cpuCell(before.cpuPerMessage.relaybox)}` : 'n/a'} |`,
    );
  }
  lines.push('');
  lines.push('## The ~40 ms in every new session: a TLS 1.3 session ticket behind Nagle');
  lines.push('');
  const fr = tp.tickets.firstReply;
  const tl = (c: number) => tp.tickets.load.find((l) => l.concurrency === c)?.result;
  const cell = (c: number, pc: number) => tp.rows.find((r) => r.concurrency === c && r.perConnection === pc);
  lines.push('| target | first reply after the TLS handshake (EHLO → 250), median / p95 | 1 client, 1 msg/conn: msg/s, p50 ms | 8 clients, 1 msg/conn: msg/s, p50 ms |');
  lines.push('| --- | --- | --- | --- |');
  const lc = (r: LoadResult | undefined) => (r ? `${loadCell(r)}, ${fmt(r.p50, 1)}` : 'n/a');
  lines.push(`| ceiling (a) | ${medP95(fr.ceiling, 1)} | ${lc(cell(1, 1)?.results.ceiling)} | ${lc(cell(8, 1)?.results.ceiling)} |`);
  lines.push(`| baseline (b) | ${medP95(fr.baseline, 1)} | ${lc(cell(1, 1)?.results.baseline)} | ${lc(cell(8, 1)?.results.baseline)} |`);
  lines.push(`| relaybox | ${medP95(fr.relaybox, 1)} | ${lc(cell(1, 1)?.results.relaybox)} | ${lc(cell(8, 1)?.results.relaybox)} |`);
  lines.push(`| baseline (b) + \`tls_config_file\` with \`NumTickets = 0\` and empty \`tls_session_ticket_cipher\` | ${medP95(fr.baselineNoTickets, 1)} | ${lc(tl(1))} | ${lc(tl(8))} |`);
  lines.push('');
  lines.push('## Configuration differences that can matter (`postconf -n`, relaybox vs baseline (b))');
  lines.push('');
  lines.push('| parameter | relaybox | baseline (b) |');
  lines.push('| --- | --- | --- |');
  lines.push(tp.mainCfDiff || '| (none) | | |');
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const began = Date.now();
  log(`${QUICK ? 'quick smoke run' : 'full run'}: start, recovery, container, throughput`);
  const sink = await Sink.start();
  cleanups.push(() => sink.remove());
  const start = await startTrials(sink);
  const recovery = await recoveryTrials(sink);
  const container = await containerStartTrials(P.containerTrials, sink, log);
  const tp = await throughput();
  await cleanup();
  const text = report(start, container, recovery, tp);
  const analysisFile = `${HERE}analysis.md`;
  let analysis = '';
  try {
    analysis = readFileSync(analysisFile, 'utf8');
  } catch {
    // no analysis written yet
  }
  const full = `${text}\n${analysis ? `${analysis.trim()}\n` : ''}`;
  process.stdout.write(full);
  if (WRITE) writeFileSync(`${ROOT}BENCHMARKS.md`, full);
  log(`done in ${Math.round((Date.now() - began) / 1000)} s${WRITE ? '; wrote BENCHMARKS.md' : ''}`);
}

main().then(
  () => process.exit(0),
  async (error) => {
    log(`failed: ${(error as Error).stack ?? error}`);
    await cleanup();
    process.exit(1);
  },
);

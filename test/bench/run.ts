// relaybox benchmarks (issue 13 and the issues after it), one module per measurement:
//   start.ts         start -> /ready by phase, filter up, SIGTERM -> exit (queue kept, nothing left)
//   recovery.ts      kill -9 of one daemon process -> recovered
//   container.ts     container start -> /ready and -> healthy
//   daemon-start.ts  rspamd (cold / warm cache) and OpenDKIM: start time and memory
//   memory.ts        the process tree's memory, the supervisor's RSS by import
//   throughput.ts    ceiling (a) / baseline (b) / relaybox, shuffled repetitions; stalls.ts traces sleeps
//   auth.ts          cost per AUTH by hash scheme, with and without Dovecot's auth cache
//   chaos.ts         100+ random kill -9 with mail in flight: nothing lost
//   report.ts, chart.ts   BENCHMARKS.md and its chart
//
//   npm run bench                      # the full run (~35 minutes on 2 cores); writes BENCHMARKS.md
//   node test/bench/run.ts --quick     # smoke: every measurement once, tiny load (writes only with --write)
//   node test/bench/run.ts --only=auth,chaos   # some modules only (add --quick for a smoke run of them)
//   node test/bench/run.ts --only=throughput --reps=1   # one full-size repetition per cell
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Sink } from '../helpers/instance.ts';
import { authTrials } from './auth.ts';
import { throughputChart } from './chart.ts';
import { chaosRun } from './chaos.ts';
import { HERE, P, QUICK, ROOT, cleanup, log } from './common.ts';
import { containerStartTrials } from './container.ts';
import { daemonStartTrials } from './daemon-start.ts';
import { importBreakdown } from './memory.ts';
import { recoveryTrials } from './recovery.ts';
import { empty } from './empty.ts';
import { report } from './report.ts';
import { startTrials } from './start.ts';
import { CELLS, MAIN_TARGETS, key, throughput } from './throughput.ts';
import { median } from './stats.ts';

/** `--only=start,recovery,container,milters,memory,throughput,auth,chaos`: a partial run (not written unless --write). */
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const MODULES = ['start', 'recovery', 'container', 'milters', 'memory', 'throughput', 'auth', 'chaos'] as const;
const wanted = (name: (typeof MODULES)[number]) => !ONLY || ONLY.includes(name);
const WRITE = process.argv.includes('--write') || (!QUICK && !ONLY);
const CHART = 'test/bench/throughput.svg';

/** The start, recovery, container and milter modules' upstream; removed at the very end. */
let sharedSink: Sink | undefined;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().then(() => {
      sharedSink?.remove();
      process.exit(130);
    });
  });
}

async function main(): Promise<void> {
  const began = Date.now();
  const loadStart = loadavg()[0]!.toFixed(2);
  log(`${QUICK ? 'quick smoke run' : 'full run'}; load average ${loadStart}`);
  // A module that fails is reported (and the exit code is 1) instead of losing the whole run.
  const failed: string[] = [];
  const step = async <T>(name: string, f: () => Promise<T>, placeholder: () => T): Promise<T> => {
    log(`== ${name} (${Math.round((Date.now() - began) / 1000)} s into the run)`);
    try {
      return await f();
    } catch (error) {
      log(`${name} failed: ${(error as Error).stack ?? error}`);
      failed.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
      await cleanup();
      return placeholder();
    }
  };
  const sink = await Sink.start();
  sharedSink = sink;
  if (ONLY) {
    const unknown = ONLY.filter((name) => !(MODULES as readonly string[]).includes(name));
    if (unknown.length) throw new Error(`--only: unknown ${unknown.join(', ')}; known: ${MODULES.join(', ')}`);
  }
  // The shared sink must outlive the modules' own cleanups: it is removed last, by hand.
  const start = wanted('start') ? await step('start, stop', () => startTrials(sink), empty.start) : empty.start();
  const recovery = wanted('recovery') ? await step('recovery', () => recoveryTrials(sink), empty.recovery) : empty.recovery();
  const container = wanted('container') ? await step('container', () => containerStartTrials(P.containerTrials, sink, log), empty.container) : empty.container();
  const milters = wanted('milters') ? await step('milters', () => daemonStartTrials(sink), empty.milters) : empty.milters();
  const imports = wanted('memory') ? await step('supervisor RSS by import', async () => importBreakdown(), () => []) : [];
  const tp = wanted('throughput') ? await step('throughput (also the idle footprint and process tree)', () => throughput(), empty.throughput) : empty.throughput();
  await cleanup();
  const auth = wanted('auth') ? await step('auth hashes and cache', () => authTrials(), empty.auth) : empty.auth();
  await cleanup();
  const chaos = wanted('chaos') ? await step('chaos', () => chaosRun(), empty.chaos) : empty.chaos();
  await cleanup();
  sink.remove();

  const series = MAIN_TARGETS.map((t, i) => ({
    name: ['ceiling (a)', 'baseline (b)', 'relaybox'][i]!,
    color: ['#9e9e9e', '#4e79a7', '#f28e2b'][i]!,
    values: CELLS.map(([c, m]) => {
      const v = (tp.runs.get(key(c, m, t)) ?? []).map((r) => r.result.perSecond);
      return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v) } : { median: Number.NaN, min: Number.NaN, max: Number.NaN };
    }),
  }));
  const svg = throughputChart('Authenticated submissions on 587: messages/s (median, min–max)', CELLS.map(([c, m]) => `${c} × ${m}`), series);
  const seconds = (Date.now() - began) / 1000;
  const text = report({ start, recovery, container, milters, imports, tp, auth, chaos, loadStart, seconds, chartFile: CHART, only: ONLY, failed });
  let analysis = '';
  try {
    analysis = readFileSync(`${HERE}analysis.md`, 'utf8');
  } catch {
    // no analysis written yet
  }
  const full = `${text}\n${analysis ? `${analysis.trim()}\n` : ''}`;
  process.stdout.write(full);
  if (WRITE) {
    writeFileSync(`${ROOT}BENCHMARKS.md`, full);
    writeFileSync(`${ROOT}${CHART}`, svg);
  } else writeFileSync('/tmp/relaybox-bench-quick.svg', svg);
  log(`done in ${Math.round(seconds)} s${WRITE ? `; wrote BENCHMARKS.md and ${CHART}` : '; chart in /tmp/relaybox-bench-quick.svg'}`);
  if (failed.length) {
    log(`FAILED modules: ${failed.join('; ')}`);
    process.exitCode = 1;
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  async (error) => {
    log(`failed: ${(error as Error).stack ?? error}`);
    await cleanup();
    sharedSink?.remove();
    process.exit(1);
  },
);

// The markdown report (BENCHMARKS.md) from every module's results.
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { P, QUICK, ROOT, MESSAGE_SIZE } from './common.ts';
import type { AuthResults } from './auth.ts';
import { CACHE_LINES, SCHEMES } from './auth.ts';
import { recoveryByKind, type ChaosResults } from './chaos.ts';
import type { ContainerResult } from './container.ts';
import type { DaemonStartResults, MilterTrial } from './daemon-start.ts';
import type { ImportRss } from './memory.ts';
import type { RecoveryResults } from './recovery.ts';
import { VICTIMS } from './recovery.ts';
import type { StartResults, StartTrial } from './start.ts';
import { CELLS, HEAVIEST, MAIN_TARGETS, UNSIGNED_CELLS, key, type Run, type Target, type ThroughputResults } from './throughput.ts';
import { fmt, median, percentile } from './stats.ts';

export interface AllResults {
  start: StartResults;
  recovery: RecoveryResults;
  container: ContainerResult;
  milters: DaemonStartResults;
  imports: ImportRss[];
  tp: ThroughputResults;
  auth: AuthResults;
  chaos: ChaosResults;
  loadStart: string;
  seconds: number;
  chartFile: string;
  /** A partial run (--only): the modules that ran. */
  only?: string[];
}

const NAMES: Record<Target, string> = { ceiling: 'ceiling (a)', baseline: 'baseline (b)', relaybox: 'relaybox', 'baseline-nodkim': 'baseline (b) without OpenDKIM', 'relaybox-nodkim': 'relaybox, DKIM_SIGNING=off' };

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
    opendkim: /OpenDKIM Filter v(\S+)/.exec(cmd('opendkim', ['-V']))?.[1] ?? '?',
    rspamd: /(\d+\.\d+(\.\d+)?)/.exec(cmd('rspamd', ['--version']))?.[1] ?? '?',
    commit: cmd('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    dirty: cmd('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) !== '',
  };
}

const ms = (values: number[], d = 0) => (values.length ? `${fmt(median(values), d)} ms (${fmt(Math.min(...values), d)}–${fmt(Math.max(...values), d)})` : 'n/a');
const medP95 = (values: number[], d = 0) => (values.length ? `${fmt(median(values), d)} / ${fmt(percentile(values, 95), d)} ms` : 'n/a');
/** Met / not met; 'not measured' when any figure it rests on is missing. */
const yes = (ok: boolean, ...figures: number[]) => (figures.some((f) => !Number.isFinite(f)) ? 'not measured' : ok ? '**yes**' : '**no**');

function perSecond(runs: Run[] | undefined): { median: number; min: number; max: number } {
  const v = (runs ?? []).map((r) => r.result.perSecond);
  return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v) } : { median: Number.NaN, min: Number.NaN, max: Number.NaN };
}

function rate(runs: Run[] | undefined): string {
  const s = perSecond(runs);
  if (!Number.isFinite(s.median)) return 'n/a';
  const errors = (runs ?? []).reduce((a, r) => a + r.result.errors, 0);
  return `${fmt(s.median, 1)} (${fmt(s.min, 0)}–${fmt(s.max, 0)})${errors ? ` **${errors} errors**` : ''}`;
}

const medOf = (runs: Run[] | undefined, f: (r: Run) => number | undefined, d = 1) => {
  const v = (runs ?? []).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? fmt(median(v), d) : 'n/a';
};

function phases(trials: StartTrial[]): string[] {
  const col = (f: (t: StartTrial) => number) => ms(trials.map(f).filter(Number.isFinite));
  return [
    col((t) => t.firstLine),
    col((t) => t.httpListening),
    col((t) => t.started),
    col((t) => t.readyEvent),
    col((t) => t.ready),
    col((t) => t.complete),
  ];
}

function milterRow(name: string, trials: MilterTrial[], note: string): string {
  return `| ${name} | ${ms(trials.map((t) => t.ms))} | ${trials.length ? `${fmt(median(trials.map((t) => t.rss)), 1)} / ${fmt(median(trials.map((t) => t.pss)), 1)} MiB in ${median(trials.map((t) => t.processes))} processes` : 'n/a'} | ${trials.length} | ${note} |`;
}

export function report(r: AllResults): string {
  const v = versions();
  const L: string[] = [];
  const { start, recovery, container, milters, imports, tp, auth, chaos } = r;
  const runsOf = (c: number, m: number, t: Target) => tp.runs.get(key(c, m, t));
  L.push(`# relaybox benchmarks${QUICK ? ' (--quick smoke run: single trials, tiny load; not representative)' : ''}`);
  L.push('');
  if (r.only) L.push(`**Partial run: only ${r.only.join(', ')}** (\`--only\`); everything else shows n/a.`, '');
  L.push(`- Date: ${v.date}; commit ${v.commit}${v.dirty ? ' (src/ had uncommitted changes; dist/ as built from the working tree)' : ''}; the run took ${fmt(r.seconds / 60, 1)} minutes`);
  L.push(`- Load average (1 min) at the start and the end of the run: ${r.loadStart} and ${loadavg()[0]!.toFixed(2)} (anything above ~0.5 at the start means other work shared the machine and single figures are noisy)`);
  L.push(`- Machine: ${v.cpu}, ${v.cores} cores, Linux ${v.kernel}`);
  L.push(`- Node ${v.node}, Postfix ${v.postfix}, Dovecot ${v.dovecot}, OpenDKIM ${v.opendkim}, rspamd ${v.rspamd}`);
  L.push(`- Command: \`${QUICK ? 'node test/bench/run.ts --quick' : 'npm run bench'}\` (as root, after \`npm run build\`); how each figure is made: "Method" at the end`);
  L.push('');

  // ---------------------------------------------------------------- goals
  const cold = start.cold.map((t) => t.ready);
  const warm = start.warm.map((t) => t.ready);
  const stops = start.stop.map((s) => s.ms);
  const kept = start.stop.filter((s) => s.queuedBefore > 0 && s.queuedAfter >= s.queuedBefore).length;
  const clean = start.stop.filter((s) => s.leftover.length === 0).length;
  const heavyRuns = runsOf(32, 20, 'relaybox') ?? [];
  const maxOf = (v: number[]) => (v.length ? Math.max(...v) : Number.NaN);
  const heavyRss = maxOf(heavyRuns.map((x) => x.supervisor?.rssMax ?? Number.NaN).filter(Number.isFinite));
  const allRss = maxOf([...tp.runs.entries()].filter(([k]) => k.endsWith(':relaybox')).flatMap(([, runs]) => runs.map((x) => x.supervisor?.rssMax ?? Number.NaN)).filter(Number.isFinite));
  const cell820 = runsOf(8, 20, 'relaybox') ?? [];
  const hp99 = cell820.map((x) => x.poll.health.p99).filter(Number.isFinite);
  const rp99 = cell820.map((x) => x.poll.ready.p99).filter(Number.isFinite);
  const ratios = CELLS.map(([c, m]) => ({ cell: `${c}×${m}`, ratio: perSecond(runsOf(c, m, 'relaybox')).median / perSecond(runsOf(c, m, 'baseline')).median }));
  const below = ratios.filter((x) => !(x.ratio >= 0.95));
  L.push('## Goals (issue 13), each from the tables below');
  L.push('');
  L.push('| goal | measured | met |');
  L.push('| --- | --- | --- |');
  L.push(`| start → /ready 200 ≤ 0.6 s, fresh STATE_DIR (median) | ${fmt(median(cold))} ms (${cold.length} trials) | ${yes(median(cold) <= 600, median(cold))} |`);
  L.push(`| start → /ready 200 ≤ 0.4 s, existing STATE_DIR (median) | ${fmt(median(warm))} ms (${warm.length} trials) | ${yes(median(warm) <= 400, median(warm))} |`);
  L.push(`| container start → healthy ≤ 1.0 s (median) | ${container.healthy.length ? `${fmt(median(container.healthy))} ms (${container.healthy.length} trials)` : container.note} | ${container.healthy.length ? yes(median(container.healthy) <= 1000) : 'not measured'} |`);
  L.push(`| SIGTERM → exit ≤ 0.5 s median, ≤ 1.5 s p95; queue kept; nothing left running | ${medP95(stops)} (${stops.length} trials); queue kept in ${kept} of ${start.stop.length}; nothing left in ${clean} of ${start.stop.length} | ${yes(median(stops) <= 500 && percentile(stops, 95) <= 1500 && kept === start.stop.length && clean === start.stop.length, median(stops))} |`);
  L.push(`| supervisor RSS ≤ 60 MiB idle | ${fmt(tp.idle.rssMedian, 1)} MiB (median over ${fmt(tp.idle.seconds, 0)} s) | ${yes(tp.idle.rssMedian <= 60, tp.idle.rssMedian)} |`);
  L.push(`| supervisor RSS ≤ 80 MiB under the heaviest cell (32 × 20) | ${fmt(heavyRss, 1)} MiB (max over its runs; max over all runs ${fmt(allRss, 1)}) | ${yes(heavyRss <= 80, heavyRss)} |`);
  L.push(`| /health and /ready p99 ≤ 5 ms during 8 × 20 | /health ${fmt(median(hp99), 1)} ms, /ready ${fmt(median(rp99), 1)} ms (median of the runs' p99; worst ${fmt(maxOf([...hp99, ...rp99]), 1)}) | ${yes(median(hp99) <= 5 && median(rp99) <= 5, median(hp99), median(rp99))} |`);
  L.push(`| throughput ≥ 0.95 × baseline (b) in every cell (medians) | ${ratios.map((x) => `${x.cell}: ${fmt(x.ratio * 100, 0)}%`).join(', ')} | ${yes(below.length === 0, ...ratios.map((x) => x.ratio))} |`);
  L.push('');

  // ---------------------------------------------------------------- start / stop / recovery
  L.push('## Start, stop and recovery (host mode)');
  L.push('');
  L.push('Phases, ms after the spawn of `node dist/cli.js run`: median (min–max). Boundaries come from the supervisor\'s own JSON log events (their `time`), except "/ready 200" and "filter up", which the bench sees by polling /ready every 10 ms.');
  L.push('');
  L.push('| start | first log line (node + modules + config) | `http_listening` (STATE_DIR prepared and rendered) | `started` (daemons launched, own start checks passed) | `ready` event (first probe round) | /ready 200 | filter up (/ready `degraded` empty) | trials |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  L.push(`| cold (fresh STATE_DIR: certificate, DKIM key, queue created) | ${phases(start.cold).join(' | ')} | ${start.cold.length} |`);
  L.push(`| warm (existing STATE_DIR) | ${phases(start.warm).join(' | ')} | ${start.warm.length} |`);
  L.push('');
  L.push('| measurement | median / p95 | trials | notes |');
  L.push('| --- | --- | --- | --- |');
  L.push(`| SIGTERM → supervisor exit | ${medP95(stops)} | ${stops.length} | warm instance with one message held in the queue (its upstream refuses connections); queue files after exit ≥ before in ${kept} of ${start.stop.length}; no process of the STATE_DIR left (by working directory or command line) in ${clean} of ${start.stop.length}; exit code 0 in ${start.stop.filter((s) => s.code === 0).length} |`);
  const goneNames = [...new Set(start.stop.flatMap((x) => Object.keys(x.gone)))].sort();
  if (goneNames.length) L.push(`| … each daemon's last process gone after SIGTERM | ${goneNames.map((name) => `${name} ${fmt(median(start.stop.map((x) => x.gone[name] ?? Number.NaN).filter(Number.isFinite)))}`).join(', ')} ms (medians) | ${stops.length} | the supervisor stops them in reverse start order, then exits |`);
  L.push(`| container start → /ready 200 | ${container.ready.length ? medP95(container.ready) : container.note} | ${container.ready.length} | ${container.ready.length ? container.note : ''} |`);
  L.push(`| container start → healthy | ${container.healthy.length ? medP95(container.healthy) : 'n/a'} | ${container.healthy.length} | ${container.healthNote} |`);
  for (const victim of VICTIMS) {
    const t = recovery.times[victim];
    const how = victim === 'dovecot auth' ? `respawned by Dovecot's master; supervisor restarted Dovecot in ${recovery.restarts[victim]}; /ready went 503 in ${recovery.notReadySeen[victim]}` : `until restarted by the supervisor, /ready 200 and a fresh AUTH succeeds; /ready seen 503 in ${recovery.notReadySeen[victim]} of ${t.length}`;
    L.push(`| recovery after \`kill -9\` of the ${victim} | ${medP95(t)} | ${t.length} | ${how} |`);
  }
  const startErrors = [...start.errors, ...container.errors, ...recovery.errors, ...milters.errors];
  if (startErrors.length) L.push('', `Failed trials: ${startErrors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  if (start.stop.some((s) => s.leftover.length)) L.push('', `Left running after an exit: ${[...new Set(start.stop.flatMap((s) => s.leftover.map((x) => x.replace(/^\d+ /, ''))))].join(', ')}`);
  L.push('');

  // ---------------------------------------------------------------- milters
  L.push('## The milters: start and memory (measured here)');
  L.push('');
  L.push("Each started on its own from relaybox's rendered configuration: spawn → its milter socket answers the option negotiation; memory 2 s later, summed over the daemon's processes (`/proc/PID/smaps_rollup`). Median (min–max).");
  L.push('');
  L.push('| daemon | spawn → milter answers | RSS / PSS | trials | notes |');
  L.push('| --- | --- | --- | --- | --- |');
  L.push(milterRow('rspamd, cold (empty hyperscan cache)', milters.rspamdCold, 'a first start without the image\'s compiled cache'));
  L.push(milterRow('rspamd, warm (seed cache)', milters.rspamdWarm, milters.seeded ? 'the cache `docker/rspamd-cache.sh` compiles into /var/cache/relaybox/rspamd-hs, as relaybox seeds STATE_DIR with it' : '**no seed cache on this machine** (run docker/rspamd-cache.sh): this is a second cold start'));
  L.push(milterRow('OpenDKIM (the signer)', milters.opendkim, 'one key (RSA 2048)'));
  L.push('');

  // ---------------------------------------------------------------- memory
  L.push('## Memory');
  L.push('');
  L.push(`The whole relaybox process tree at idle (after ${fmt(P.idleMs / 1000, 0)} s idle; every daemon's process group, from \`/proc/PID/smaps_rollup\`; PSS shares libraries between processes fairly, so the PSS column adds up, RSS does not; the supervisor's PSS is lower here than in a container because the bench's own Node processes share the node binary with it):`);
  L.push('');
  L.push('| part | processes | RSS MiB | PSS MiB |');
  L.push('| --- | --- | --- | --- |');
  for (const p of tp.tree.parts) L.push(`| ${p.name} | ${p.processes} | ${fmt(p.rss, 1)} | ${fmt(p.pss, 1)} |`);
  L.push(`| **total** | ${tp.tree.parts.reduce((a, p) => a + p.processes, 0)} | ${fmt(tp.tree.parts.reduce((a, p) => a + p.rss, 0), 1)} | **${fmt(tp.tree.parts.reduce((a, p) => a + p.pss, 0), 1)}** |`);
  L.push('');
  L.push(`Where the supervisor's RSS comes from: a fresh \`node\` importing only the named modules (a plain .mjs entry point, median of ${P.rssTrials}), next to the running supervisor:`);
  L.push('');
  L.push('| imported | RSS MiB | V8 heap used MiB |');
  L.push('| --- | --- | --- |');
  for (const i of imports) L.push(`| ${i.label} | ${fmt(i.rss, 1)} | ${fmt(i.heapUsed, 1)} |`);
  L.push(`| the running supervisor at idle (\`relaybox run\`, median over ${fmt(tp.idle.seconds, 0)} s) | ${fmt(tp.idle.rssMedian, 1)} | |`);
  L.push(`| the running supervisor under the heaviest cell (32 × 20, max) | ${fmt(heavyRss, 1)} | |`);
  L.push('');
  L.push(`Supervisor CPU at idle: ${fmt(tp.idle.cpu, 2)} s over ${fmt(tp.idle.seconds, 0)} s (${fmt((tp.idle.cpu / tp.idle.seconds) * 100, 2)}% of a core); /health p50 / p99 at idle ${fmt(tp.idle.poll.health.p50, 1)} / ${fmt(tp.idle.poll.health.p99, 1)} ms, /ready ${fmt(tp.idle.poll.ready.p50, 1)} / ${fmt(tp.idle.poll.ready.p99, 1)} ms.`);
  L.push('');

  // ---------------------------------------------------------------- throughput
  L.push(`## Authenticated submission throughput (port 587: STARTTLS + AUTH PLAIN + ${MESSAGE_SIZE / 1024} KB message)`);
  L.push('');
  L.push(`![messages/s per cell](${r.chartFile})`);
  L.push('');
  L.push(`Each cell ran ${P.reps} times per target, every (cell, target) run in a shuffled order per repetition; each run ${P.warmupMs / 1000} s warm-up + ${P.durationMs / 1000} s measured. messages/s: median (min–max). Latency p50 / p99 (ms) and CPU: medians over the runs. Baseline (b) signs with OpenDKIM like relaybox (relaybox's rendered OpenDKIM configuration and key) and uses relaybox's TLS settings (no TLS 1.3 tickets). The /health + /ready poller (every 50 ms, fresh connections) runs during every run, whatever the target; its figures are from the relaybox runs.`);
  L.push('');
  L.push('| clients × msgs/conn | ceiling (a) | baseline (b) | relaybox | relaybox / (b) | ≥ 95% | latency (b) | latency relaybox | CPU ms/msg (b) | CPU ms/msg relaybox: daemons + supervisor | /health p99 | /ready p99 | supervisor RSS max MiB | ≥0.9 s stalls (b) / relaybox |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const stalls = (runs: Run[] | undefined) => {
    const all: Record<string, number> = {};
    for (const x of runs ?? []) for (const [verb, n] of Object.entries(x.result.stalls)) all[verb] = (all[verb] ?? 0) + n;
    const s = Object.entries(all).map(([verb, n]) => `${n}× ${verb}`).join(', ');
    return s || '0';
  };
  for (const [c, m] of CELLS) {
    const [a, b, x] = MAIN_TARGETS.map((t) => runsOf(c, m, t));
    const ratio = perSecond(x).median / perSecond(b).median;
    L.push(
      `| ${c} × ${m} | ${rate(a)} | ${rate(b)} | ${rate(x)} | ${fmt(ratio * 100, 0)}% | ${Number.isFinite(ratio) ? (ratio >= 0.95 ? 'yes' : '**no**') : 'n/a'} | ${medOf(b, (q) => q.result.p50)} / ${medOf(b, (q) => q.result.p99)} | ${medOf(x, (q) => q.result.p50)} / ${medOf(x, (q) => q.result.p99)} | ${medOf(b, (q) => q.cpu?.daemons, 2)} | ${medOf(x, (q) => q.cpu?.daemons, 2)} + ${medOf(x, (q) => q.cpu?.supervisor, 2)} | ${medOf(x, (q) => q.poll.health.p99)} | ${medOf(x, (q) => q.poll.ready.p99)} | ${fmt(maxOf((x ?? []).map((q) => q.supervisor?.rssMax ?? Number.NaN).filter(Number.isFinite)), 1)} | ${stalls(b)} / ${stalls(x)} |`,
    );
  }
  if (tp.errors.length) L.push('', `Failed runs: ${tp.errors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  const firstErrors = [...tp.runs.entries()].flatMap(([k, runs]) => runs.flatMap((x) => x.result.firstErrors.slice(0, 1).map((e) => `${k}: ${e}`))).slice(0, 6);
  if (firstErrors.length) L.push('', `First errors: ${firstErrors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  L.push('');
  L.push('**Signing, separately**: the same cells with neither side signing (baseline (b) without OpenDKIM, relaybox with `DKIM_SIGNING=off`), in the same shuffled runs:');
  L.push('');
  L.push('| clients × msgs/conn | baseline (b) without OpenDKIM | relaybox, DKIM_SIGNING=off | relaybox / (b), unsigned | (b) signed ÷ unsigned | relaybox signed ÷ unsigned | CPU ms/msg (b) / relaybox |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const cell of UNSIGNED_CELLS) {
    const [c, m] = cell.split('x').map(Number) as [number, number];
    const bn = runsOf(c, m, 'baseline-nodkim');
    const rn = runsOf(c, m, 'relaybox-nodkim');
    const cost = (signed: Run[] | undefined, unsigned: Run[] | undefined) => `${fmt((perSecond(signed).median / perSecond(unsigned).median) * 100, 0)}%`;
    L.push(`| ${c} × ${m} | ${rate(bn)} | ${rate(rn)} | ${fmt((perSecond(rn).median / perSecond(bn).median) * 100, 0)}% | ${cost(runsOf(c, m, 'baseline'), bn)} | ${cost(runsOf(c, m, 'relaybox'), rn)} | ${medOf(bn, (q) => q.cpu?.daemons, 2)} / ${medOf(rn, (q) => q.cpu?.daemons, 2)} + ${medOf(rn, (q) => q.cpu?.supervisor, 2)} |`);
  }
  L.push('');

  // ---------------------------------------------------------------- stalls
  L.push(`## The ~1 s stalls in ${HEAVIEST.replace('x', ' × ')}`);
  L.push('');
  if (!tp.traced) L.push('Not traced: `perf trace` is not available here (needs root and perf).');
  else {
    L.push(`During every ${HEAVIEST.replace('x', ' × ')} run, \`perf trace -a --duration 900 -e clock_nanosleep,select,pselect6 --call-graph dwarf\` recorded every sleep of ≥ 0.9 s on the machine (\`sleep()\` is clock_nanosleep; Postfix's \`doze()\` is select) with its user stack; each sleeping pid is attributed to its target by process group. Counted over all ${P.reps} runs per target (client-side waits: commands whose reply took ≥ 0.9 s, summed over the same runs):`);
    L.push('');
    L.push('| target | client-side ≥0.9 s waits, by command | process | sleep | called from (innermost first) | count |');
    L.push('| --- | --- | --- | --- | --- | --- |');
    for (const t of ['baseline', 'relaybox', 'baseline-nodkim', 'relaybox-nodkim'] as Target[]) {
      const [c, m] = HEAVIEST.split('x').map(Number) as [number, number];
      const mine = tp.sleeps.filter((s) => s.target === t);
      const groups = new Map<string, { n: number; ms: number[] }>();
      for (const s of mine) {
        const g = `${s.comm}|${s.syscall}|${s.caller}`;
        const e = groups.get(g) ?? { n: 0, ms: [] };
        e.n += 1;
        e.ms.push(s.ms);
        groups.set(g, e);
      }
      if (groups.size === 0) L.push(`| ${NAMES[t]} | ${stalls(runsOf(c, m, t))} | — | — | none | 0 |`);
      for (const [g, e] of [...groups.entries()].sort((x, y) => y[1].n - x[1].n)) {
        const [comm, syscall, caller] = g.split('|');
        L.push(`| ${NAMES[t]} | ${stalls(runsOf(c, m, t))} | ${comm} | ${syscall}, ${fmt(median(e.ms), 0)} ms | \`${caller}\` | ${e.n} |`);
      }
    }
  }
  L.push('');

  L.push('The mechanism on demand: Postfix\'s queue manager (qmgr) paused with SIGSTOP for 3 s in the middle of one 8 × 20 run (7 s measured), so that mail arrives faster than qmgr picks it up, as it does when both cores are saturated; traced the same way:');
  L.push('');
  L.push('| target | msg/s | client-side ≥0.9 s waits | traced ≥0.9 s sleeps (process, syscall, called from: count) |');
  L.push('| --- | --- | --- | --- |');
  for (const f of tp.flow) {
    const g = new Map<string, number>();
    for (const s of f.sleeps) g.set(`${s.comm} ${s.syscall} \`${s.caller}\``, (g.get(`${s.comm} ${s.syscall} \`${s.caller}\``) ?? 0) + 1);
    const st = Object.entries(f.stalls).map(([verb, n]) => `${n}× ${verb}`).join(', ') || '0';
    L.push(`| ${f.label} | ${fmt(f.perSecond, 1)} | ${st} | ${[...g.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join('; ') || 'none'} |`);
  }
  L.push('');

  // ---------------------------------------------------------------- tickets
  L.push('## TLS 1.3 session tickets (why baseline (b) uses relaybox\'s TLS settings)');
  L.push('');
  const fr = tp.tickets.firstReply;
  const tl = (t: string, c: number) => {
    const v = (tp.tickets.load.get(`${t}:${c}`) ?? []).map((x) => x.perSecond);
    return v.length ? `${fmt(median(v), 1)} (${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)})` : 'n/a';
  };
  L.push('| target | first reply after the TLS handshake (EHLO → 250), median / p95 | 1 × 1 msg/s | 8 × 1 msg/s |');
  L.push('| --- | --- | --- | --- |');
  L.push(`| baseline (b) with the tutorial's stock TLS settings (one ticket per handshake) | ${medP95(fr.stock ?? [], 1)} | ${tl('stock', 1)} | ${tl('stock', 8)} |`);
  L.push(`| baseline (b) as measured above (relaybox's TLS settings: \`NumTickets = 0\`, empty \`tls_session_ticket_cipher\`) | ${medP95(fr.baseline ?? [], 1)} | ${tl('baseline', 1)} | ${tl('baseline', 8)} |`);
  L.push(`| relaybox | ${medP95(fr.relaybox ?? [], 1)} | | |`);
  L.push(`| ceiling (a) | ${medP95(fr.ceiling ?? [], 1)} | | |`);
  L.push('');

  // ---------------------------------------------------------------- auth
  L.push('## Authentication cost by password hash, and Dovecot\'s auth cache');
  L.push('');
  L.push(`One relaybox instance, one user per scheme (hash made by \`doveadm pw -s SCHEME\` with Dovecot's defaults, as \`relaybox hash-password\` does; ${SCHEMES.map((s) => `\`${auth.hashes[s]?.split('$').slice(0, 4).join('$')}$…\``).join(', ')}). "Cache on" appends \`${CACHE_LINES.join('`, `')}\` to the rendered dovecot.conf (reloaded with SIGHUP); "off" is relaybox as rendered. AUTH latency: AUTH PLAIN → 235 over ${P.authSerial} fresh sessions one after another (the first one fills the cache); Dovecot CPU per AUTH over the same sessions; throughput: 8 clients × 1 message per session (an AUTH per message), ${P.authReps} runs of ${P.authMs / 1000} s per row, shuffled.`);
  L.push('');
  L.push('| scheme | auth cache | AUTH → 235, median / p95 | Dovecot CPU ms per AUTH | 8 × 1 msg/s, median (min–max) | errors | Dovecot RSS max under load |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const s of SCHEMES) {
    for (const cache of ['off', 'on']) {
      const cell = auth.cells.get(`${s}:${cache}`);
      const v = (cell?.load ?? []).map((x) => x.perSecond);
      L.push(`| ${s} | ${cache} | ${medP95(cell?.authMs ?? [], 1)} | ${fmt(cell?.cpuPerAuth ?? Number.NaN, 1)} | ${v.length ? `${fmt(median(v), 1)} (${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)})` : 'n/a'} | ${(cell?.load ?? []).reduce((a, x) => a + x.errors, 0)} | ${fmt(cell?.rssMax ?? Number.NaN, 0)} MiB |`);
    }
  }
  if (auth.errors.length) L.push('', `Failed: ${auth.errors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  L.push('');

  // ---------------------------------------------------------------- chaos
  L.push('## Chaos: kill -9 at random with mail in flight');
  L.push('');
  const c = chaos;
  L.push(`${c.kills.length} kills in ${fmt(c.durationMs / 1000, 0)} s (Postfix's master, a random Postfix child, Dovecot's master, a random Dovecot child, OpenDKIM; a master or OpenDKIM only once it has run ≥ 10 s, so the supervisor's crash-loop backoff is not what is measured) while 3 senders submit on 587 (AUTH, relayed to an upstream sink) and 2 send inbound mail on 25 to a local mailbox (\`SPAM_FILTER=off\`: rspamd is not a kill target, and offline its SPF/DMARC lookups would only slow port 25), up to 5 messages per session with 40 ms between messages; a sender retries a refused or cut message with the same Message-ID. \`RESTART_BUDGET=1000\`.`);
  L.push('');
  L.push('| messages | count |');
  L.push('| --- | --- |');
  L.push(`| got 250 (587 / 25) | ${c.accepted} (${c.acceptedByPort['587']} / ${c.acceptedByPort['25']}) |`);
  L.push(`| arrived (upstream sink or Maildir), distinct | ${c.arrived} |`);
  L.push(`| **lost** (250 but never arrived) | **${c.lost.length}**${c.lost.length ? ` (${c.lost.slice(0, 3).join(', ')}…)` : ''} |`);
  L.push(`| duplicates (arrived more than once) | ${c.duplicates} |`);
  L.push(`| arrived without a 250 (cut after the end of DATA, then resent) | ${c.arrivedWithout250} |`);
  L.push(`| still queued at the end | ${c.stillQueued}${c.stillQueued ? ` (${c.queueAtEnd.join('; ')}; files in incoming that \`postqueue -p\` does not list are messages a killed process never finished writing, which got no 250)` : ''} |`);
  L.push(`| queue 60 s after the last kill | ${c.flushedByHand ? `${c.queuedAfter60} queue files, then flushed by hand (\`postqueue -f\`); deferral reasons: ${c.deferred.join('; ')}` : 'empty'} |`);
  L.push(`| sender failures, by kind (each retried) | ${Object.entries(c.failures).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'} |`);
  L.push('');
  L.push('| killed | kills | recovery median | max | not recovered in 30 s |');
  L.push('| --- | --- | --- | --- | --- |');
  for (const k of recoveryByKind(c)) L.push(`| ${k.kind} | ${k.n} | ${fmt(k.median)} ms | ${fmt(k.max)} ms | ${k.unrecovered} |`);
  L.push('');
  L.push(`Recovery = /ready 200 again (and for a master or OpenDKIM, the supervisor's restart count up). /ready was not 200 for ${fmt(c.notReadyMs / 1000, 1)} s of ${fmt(c.durationMs / 1000, 0)} s (${fmt((c.notReadyMs / c.durationMs) * 100, 1)}%). Restarts counted by the supervisor: ${Object.entries(c.restarts).map(([k, n]) => `${k} ${n}`).join(', ')}; /health at the end: ${c.healthy ? '200' : '**not 200**'}. Children killed: ${[...new Set(c.kills.filter((k) => k.kind.endsWith('child')).map((k) => k.victim))].sort().join(', ')}.`);
  L.push('');

  // ---------------------------------------------------------------- config diff
  L.push('## Configuration differences that can matter (`postconf -n`, relaybox vs baseline (b))');
  L.push('');
  L.push('| parameter | relaybox | baseline (b) |');
  L.push('| --- | --- | --- |');
  L.push(tp.mainCfDiff || '| (none) | | |');
  L.push('');
  return L.join('\n');
}

// The markdown report (BENCHMARKS.md) from every module's results.
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { P, QUICK, ROOT } from './common.ts';
import type { AuthResults } from './auth.ts';
import type { ChaosResults } from './chaos.ts';
import type { ContainerResult } from './container.ts';
import type { DaemonStartResults, MilterTrial } from './daemon-start.ts';
import type { ImportRss } from './memory.ts';
import type { RecoveryResults } from './recovery.ts';
import { VICTIMS } from './recovery.ts';
import type { StartResults, StartTrial } from './start.ts';
import { loadSections } from './report-load.ts';
import { medP95, ms, perSecond, pooledP99, yes } from './report-format.ts';
import { CELLS, key, type Target, type ThroughputResults } from './throughput.ts';
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
  /** Modules that failed (their sections show n/a). */
  failed: string[];
}

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
  const { start, recovery, container, milters, imports, tp } = r;
  const runsOf = (c: number, m: number, t: Target) => tp.runs.get(key(c, m, t));
  L.push(`# relaybox benchmarks${QUICK ? ' (--quick smoke run: single trials, tiny load; not representative)' : ''}`);
  L.push('');
  if (r.failed.length) L.push(`**Failed modules (their figures show n/a): ${r.failed.map((f) => `\`${f.slice(0, 200)}\``).join('; ')}**`, '');
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
  const h820 = pooledP99(cell820, 'health');
  const r820 = pooledP99(cell820, 'ready');
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
  L.push(`| /health and /ready p99 ≤ 5 ms during 8 × 20 | /health ${fmt(h820.p99, 1)} ms, /ready ${fmt(r820.p99, 1)} ms (${h820.samples} and ${r820.samples} requests over its ${cell820.length} relaybox runs${h820.failures + r820.failures ? `; **${h820.failures + r820.failures} failed**` : ''}) | ${yes(h820.p99 <= 5 && r820.p99 <= 5 && h820.failures + r820.failures === 0, h820.p99, r820.p99)} |`);
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
  const goneOf = (name: string) => start.stop.map((x) => x.gone[name] ?? Number.NaN).filter(Number.isFinite);
  if (goneNames.length) L.push(`| … each daemon's last process gone after SIGTERM, median / max | ${goneNames.map((name) => `${name} ${fmt(median(goneOf(name)))} / ${fmt(Math.max(...goneOf(name)))}`).join(', ')} ms | ${stops.length} | the supervisor stops Postfix first, then the daemons it needs, then exits |`);
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

  loadSections(r, L);
  return L.join('\n');
}

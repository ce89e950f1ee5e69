// Authenticated submission throughput: a TLS ceiling (a), a hand-written baseline (b) and relaybox,
// every cell repeated P.reps times in a randomised interleaved order; the same /health + /ready
// poller runs during every run whatever the target. Also the supervisor's idle footprint, the
// memory of the whole process tree at idle, and what sleeps ≥ 0.9 s during the 32 × 20 runs.
import { execFileSync } from 'node:child_process';
import { HOSTNAME, PASSWORD, freePort, hashOf, type Instance } from '../helpers/instance.ts';
import { statePaths } from '../../src/render/paths.ts';
import { Baseline, queuedIn } from './baseline.ts';
import { P, QUICK, USER, countingSink, drained, footprintSampler, httpPoller, loadOptions, log, onCleanup, runLoadgen, shuffle, startInstance, startTlsSink, type PollStats } from './common.ts';
import { authOnce, ehloAfterTls, type LoadResult } from './loadgen.ts';
import { cpuSeconds, groupsCpuSeconds, readPid } from './proc.ts';
import { flowControlCheck, traceSleeps, type FlowCheck, type SleepEvent } from './stalls.ts';
import { treeMemory, type TreeMemory } from './memory.ts';
import { fmt, sleep } from './stats.ts';

export type Target = 'ceiling' | 'baseline' | 'relaybox' | 'baseline-nodkim' | 'relaybox-nodkim';
export const MAIN_TARGETS: Target[] = ['ceiling', 'baseline', 'relaybox'];
export const CELLS: Array<[number, number]> = [[1, 1], [8, 1], [32, 1], [1, 20], [8, 20], [32, 20]];
/** Cells that also run the unsigned pair (baseline without OpenDKIM, relaybox with DKIM_SIGNING=off). */
export const UNSIGNED_CELLS = ['8x1', '8x20', '32x20'];
export const HEAVIEST = '32x20';

export interface Run {
  result: LoadResult;
  /** CPU ms per accepted message from the start of the run until the queue was empty again. */
  cpu?: { daemons: number; supervisor: number };
  poll: { health: PollStats; ready: PollStats };
  supervisor?: { cpu: number; rssMax: number; seconds: number; logLines: number };
}

export interface ThroughputResults {
  runs: Map<string, Run[]>;
  sleeps: SleepEvent[];
  traced: boolean;
  idle: { cpu: number; rssMax: number; rssMedian: number; seconds: number; poll: { health: PollStats; ready: PollStats } };
  tree: TreeMemory;
  tickets: { firstReply: Record<string, number[]>; load: Map<string, LoadResult[]> };
  flow: FlowCheck[];
  mainCfDiff: string;
  errors: string[];
}

export const key = (c: number, m: number, t?: string) => `${c}x${m}${t ? `:${t}` : ''}`;

/** The TLS settings relaybox renders, copied into baseline (b) (TLS 1.3 tickets off among them). */
const TLS_KEYS = ['tls_config_file', 'tls_config_name', 'tls_session_ticket_cipher', 'smtpd_tls_protocols', 'smtpd_tls_mandatory_protocols', 'smtpd_tls_ciphers', 'smtpd_tls_mandatory_ciphers', 'tls_high_cipherlist', 'tls_preempt_cipherlist', 'smtpd_tls_session_cache_database'];

function postconfN(dir: string): Map<string, string> {
  const out = execFileSync('postconf', ['-c', dir, '-n'], { encoding: 'utf8' });
  return new Map(out.split('\n').map((line) => /^(\S+) =\s?(.*)$/.exec(line)).filter((m): m is RegExpExecArray => m !== null).map((m) => [m[1]!, m[2]!] as const));
}

export async function throughput(): Promise<ThroughputResults> {
  const errors: string[] = [];
  const sinks = { relaybox: await countingSink(), baseline: await countingSink(), relayboxNoDkim: await countingSink(), baselineNoDkim: await countingSink() };
  const inst = await startInstance({ RELAY_HOST: `[127.0.0.1]:${sinks.relaybox.port}` });
  onCleanup(() => inst.destroy());
  const paths = statePaths(inst.stateDir);
  const supervisorPid = inst.child!.pid!;
  const certFile = paths.generatedCert;
  const keyFile = paths.generatedKey;

  // Idle first, with nothing else running: the supervisor's footprint and the whole tree's memory.
  log(`idle footprint: ${P.idleMs / 1000} s`);
  await sleep(QUICK ? 1000 : 5000);
  inst.lines.length = 0;
  const idleSampler = footprintSampler(supervisorPid, 1000);
  const idlePoller = httpPoller(inst.url(''), 250);
  await sleep(P.idleMs);
  const idle = { ...idleSampler.stop(), poll: await idlePoller.stop() };
  const tree = await treeMemory(inst);

  const instNoDkim = await startInstance({ RELAY_HOST: `[127.0.0.1]:${sinks.relayboxNoDkim.port}`, DKIM_SIGNING: 'off' });
  onCleanup(() => instNoDkim.destroy());
  const pathsNoDkim = statePaths(instNoDkim.stateDir);
  const relayboxTls = postconfN(paths.postfix);
  const tlsLines = TLS_KEYS.filter((k) => relayboxTls.has(k)).map((k) => `${k} = ${relayboxTls.get(k)}`);
  const users = [{ address: USER, hash: hashOf(PASSWORD) }];
  const baselineOptions = async (sinkPort: number, dkim: boolean, tls = true) => ({ port: await freePort(), sinkPort, hostname: HOSTNAME, certFile, keyFile, users, extraMainCf: tls ? tlsLines : [], ...(dkim ? { dkimFrom: inst.stateDir } : {}) });
  const baseline = await Baseline.start(await baselineOptions(sinks.baseline.port, true));
  onCleanup(() => baseline.stop());
  const baselineNoDkim = await Baseline.start(await baselineOptions(sinks.baselineNoDkim.port, false));
  onCleanup(() => baselineNoDkim.stop());
  const ceiling = await startTlsSink(certFile, keyFile);

  const relayboxGroups = (p: typeof paths) => () => [readPid(p.masterPid), readPid(`${p.dovecotBase}/master.pid`), readPid(p.opendkimPid)].filter((g): g is number => g !== undefined);
  const targets: Record<Target, { port: number; queued: () => number; groups: () => number[]; instance?: Instance }> = {
    ceiling: { port: ceiling.port, queued: () => 0, groups: () => [] },
    baseline: { port: baseline.port, queued: () => baseline.queued(), groups: () => baseline.groups() },
    relaybox: { port: inst.ports.submission, queued: () => queuedIn(paths.queue), groups: relayboxGroups(paths), instance: inst },
    'baseline-nodkim': { port: baselineNoDkim.port, queued: () => baselineNoDkim.queued(), groups: () => baselineNoDkim.groups() },
    'relaybox-nodkim': { port: instNoDkim.ports.submission, queued: () => queuedIn(pathsNoDkim.queue), groups: relayboxGroups(pathsNoDkim), instance: instNoDkim },
  };
  for (const t of ['baseline', 'relaybox', 'baseline-nodkim', 'relaybox-nodkim'] as Target[]) {
    if (!(await authOnce(targets[t].port, USER, PASSWORD, 5000))) throw new Error(`${t}: AUTH does not work`);
  }
  const allDrained = async () => {
    for (const [name, t] of Object.entries(targets)) await drained(name, t.queued);
  };

  const plan: Array<{ c: number; m: number; t: Target }> = [];
  for (const [c, m] of CELLS) for (const t of [...MAIN_TARGETS, ...(UNSIGNED_CELLS.includes(key(c, m)) ? (['baseline-nodkim', 'relaybox-nodkim'] as Target[]) : [])]) plan.push({ c, m, t });
  const runs = new Map<string, Run[]>();
  const sleeps: SleepEvent[] = [];
  let traced = false;
  const total = plan.length * P.reps;
  let done = 0;
  const began = Date.now();
  for (let rep = 1; rep <= P.reps; rep++) {
    for (const { c, m, t } of shuffle([...plan])) {
      done += 1;
      const target = targets[t];
      await allDrained();
      await sleep(P.pause);
      const polled = target.instance ?? inst;
      const poller = httpPoller(polled.url(''), 50);
      const sampler = target.instance ? footprintSampler(target.instance.child!.pid!) : undefined;
      const lines0 = polled.lines.length;
      const groups = target.groups();
      const cpu0 = groupsCpuSeconds(groups);
      const sup0 = target.instance ? cpuSeconds(target.instance.child!.pid!) : 0;
      const tracer = key(c, m) === HEAVIEST ? traceSleeps({ [t]: target.groups }) : undefined;
      let result: LoadResult | undefined;
      try {
        result = await runLoadgen(loadOptions(target.port, c, m));
      } catch (error) {
        errors.push(`${t} ${key(c, m)}: ${(error as Error).message}`);
      }
      if (tracer) {
        traced = true;
        sleeps.push(...(await tracer.stop()));
      }
      const poll = await poller.stop();
      const f = sampler?.stop();
      const run: Run | undefined = result ? { result, poll, ...(f ? { supervisor: { cpu: f.cpu, rssMax: f.rssMax, seconds: f.seconds, logLines: polled.lines.length - lines0 } } : {}) } : undefined;
      polled.lines.length = 0;
      if (run && t !== 'ceiling' && result!.total > 0) {
        await drained(t, target.queued);
        run.cpu = { daemons: ((groupsCpuSeconds(groups) - cpu0) * 1000) / result!.total, supervisor: target.instance ? ((cpuSeconds(target.instance.child!.pid!) - sup0) * 1000) / result!.total : 0 };
      }
      if (run) runs.set(key(c, m, t), [...(runs.get(key(c, m, t)) ?? []), run]);
      const eta = Math.round(((Date.now() - began) / done) * (total - done) / 1000);
      log(`load ${done}/${total} (rep ${rep}) ${t} ${c}×${m}: ${result ? `${fmt(result.perSecond, 1)} msg/s, p50 ${fmt(result.p50, 1)} ms, p99 ${fmt(result.p99, 1)} ms, errors ${result.errors}${Object.keys(result.stalls).length ? `, stalls ${JSON.stringify(result.stalls)}` : ''}` : 'failed'}; ~${eta} s left`);
    }
  }
  await allDrained();
  const mainCfDiff = diffMainCf(paths.postfix, baseline.configDir);

  // TLS 1.3 session tickets: baseline (b) as used (relaybox's TLS settings) against the same
  // baseline with the tutorial's stock TLS settings (a ticket after every handshake).
  log('TLS 1.3 session ticket check');
  const stock = await Baseline.start(await baselineOptions(sinks.baseline.port, true, false));
  onCleanup(() => stock.stop());
  const sessions = QUICK ? 3 : 10;
  const firstReply: Record<string, number[]> = {
    ceiling: await ehloAfterTls(ceiling.port, sessions),
    baseline: await ehloAfterTls(baseline.port, sessions),
    relaybox: await ehloAfterTls(inst.ports.submission, sessions),
    stock: await ehloAfterTls(stock.port, sessions),
  };
  const ticketLoad = new Map<string, LoadResult[]>();
  for (let rep = 1; rep <= Math.min(P.reps, 3); rep++) {
    for (const [t, port] of shuffle([['stock', stock.port], ['baseline', baseline.port]] as Array<[string, number]>)) {
      for (const c of [1, 8]) {
        await drained('stock', () => stock.queued() + baseline.queued());
        await sleep(P.pause);
        const r = await runLoadgen(loadOptions(port, c, 1)).catch(() => undefined);
        if (r) ticketLoad.set(`${t}:${c}`, [...(ticketLoad.get(`${t}:${c}`) ?? []), r]);
        log(`tickets ${t} ${c}×1 rep ${rep}: ${r ? `${fmt(r.perSecond, 1)} msg/s, p50 ${fmt(r.p50, 1)} ms` : 'failed'}`);
      }
    }
  }
  await stock.stop();

  // The stall mechanism on demand (stalls.ts): the queue manager paused for 3 s during 8 × 20, in
  // relaybox and baseline (b), then in baseline (b) with Postfix's inflow control off.
  log('flow control check');
  const flowTarget = (label: string, port: number, masterPid: () => number | undefined, groups: () => number[]) => ({ label, port, masterPid, groups });
  const flowRun = async (port: number) => {
    await allDrained();
    return runLoadgen(loadOptions(port, 8, 20, { durationMs: 7000 }));
  };
  const flow = await flowControlCheck(
    [flowTarget('relaybox', inst.ports.submission, () => readPid(paths.masterPid), targets.relaybox.groups), flowTarget('baseline (b)', baseline.port, () => readPid(`${baseline.dir}/queue/pid/master.pid`), () => baseline.groups())],
    flowRun,
  );
  execFileSync('postconf', ['-c', baseline.configDir, '-e', 'in_flow_delay = 0']);
  execFileSync('postfix', ['-c', baseline.configDir, 'reload'], { stdio: 'ignore' });
  await sleep(1500);
  flow.push(...(await flowControlCheck([flowTarget('baseline (b) with in_flow_delay = 0', baseline.port, () => readPid(`${baseline.dir}/queue/pid/master.pid`), () => baseline.groups())], flowRun)));
  for (const f of flow) log(`flow check ${f.label}: ${fmt(f.perSecond, 1)} msg/s, stalls ${JSON.stringify(f.stalls)}, ${f.sleeps.length} traced sleeps`);
  return { runs, sleeps, traced, idle, tree, tickets: { firstReply, load: ticketLoad }, flow, mainCfDiff, errors };
}

/** `postconf -n` of both configurations, side by side where they differ (TLS, SASL, logging lines). */
function diffMainCf(relayboxDir: string, baselineDir: string): string {
  const rb = postconfN(relayboxDir);
  const bl = postconfN(baselineDir);
  const interesting = /tls|sasl|log|cache|restrictions|maps|header|limit|milter/;
  const keys = [...new Set([...rb.keys(), ...bl.keys()])].filter((k) => interesting.test(k) && rb.get(k) !== bl.get(k)).sort();
  return keys.map((k) => `| \`${k}\` | ${short(rb.get(k))} | ${short(bl.get(k))} |`).join('\n');
}

function short(value: string | undefined): string {
  if (value === undefined) return '(default)';
  if (value === '') return '(empty)';
  const v = value.replace(/\/tmp\/[^/\s,]+/g, '…').replace(/\|/g, '\\|');
  return `\`${v.length > 60 ? `${v.slice(0, 57)}...` : v}\``;
}


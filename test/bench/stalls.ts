// Which process waits, and where, when a command stalls for ~1 s: `perf trace` records every pure
// sleep of 900 ms or more on the machine (clock_nanosleep, i.e. glibc's sleep(); select/pselect6,
// which Postfix's doze() uses; none of them is on a busy path, so tracing costs next to nothing)
// with its user stack; each sleeping pid is attributed to a target by its process group, sampled
// while the run goes on.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { onCleanup } from './common.ts';
import { comm, processGroup } from './proc.ts';
import { sleep } from './stats.ts';

export interface SleepEvent {
  target: string;
  comm: string;
  /** clock_nanosleep (sleep()), or select / pselect6 (Postfix's doze()). */
  syscall: string;
  ms: number;
  /** The first functions above libc's sleep, innermost first (e.g. "attr_clnt_request ← anvil_clnt_disconnect"). */
  caller: string;
}

let available: boolean | undefined;
/** perf trace works here (root, perf installed, tracepoints reachable). */
export function perfAvailable(): boolean {
  available ??= spawnSync('perf', ['trace', '-a', '-e', 'clock_nanosleep', '--duration', '100000', '--', 'true'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
  return available;
}

const LIBC = /^(__GI_|__sleep|__nanosleep|__clock_nanosleep|clock_nanosleep|nanosleep|sleep|usleep|__select|select|__pselect|pselect|\[unknown\]|\[0x)/;

export function parsePerfTrace(text: string): Array<{ pid: number; comm: string; syscall: string; ms: number; caller: string }> {
  const out: Array<{ pid: number; comm: string; syscall: string; ms: number; caller: string; frames: string[] }> = [];
  for (const line of text.split('\n')) {
    // "  1234.5 (1000.2 ms): cleanup/4711 pselect6(...) = 0", or "... [continued]: pselect6()) = 0"
    const head = /^\s*[\d.]+ \(\s*([\d.]+) ms\): (.+?)\/(\d+) .*?(\w+)\(/.exec(line);
    if (head) {
      // perf prints a wrapped-around duration for a call that began before the trace did.
      if (Number(head[1]) > 3_600_000) {
        out.push({ ms: Number.NaN, comm: '', pid: -1, syscall: '', caller: '', frames: [] });
        continue;
      }
      out.push({ ms: Number(head[1]), comm: head[2]!, pid: Number(head[3]), syscall: head[4]!, caller: '', frames: [] });
      continue;
    }
    if (/^\s*[\d.]+ \(/.test(line)) continue; // an event line of another form
    const frame = /^\s+(\S+) \(/.exec(line) ?? /^\s+(\[[^\]]+\])/.exec(line);
    if (frame && out.length) out.at(-1)!.frames.push(frame[1]!);
  }
  return out.filter((e) => e.pid > 0).map(({ frames, ...e }) => {
    const named = frames.filter((f) => !LIBC.test(f)).slice(0, 2);
    return { ...e, caller: named.length ? named.join(' ← ') : frames.length ? '(stack not unwound above libc)' : '(no stack)' };
  });
}

/** Starts perf trace and the pid → target sampler; stop() returns the attributed sleeps. */
export function traceSleeps(groupsOf: Record<string, () => number[]>): { stop: () => Promise<SleepEvent[]> } | undefined {
  if (!perfAvailable()) return undefined;
  const file = `/tmp/rbbench-perf-${process.pid}-${Date.now()}.txt`;
  // nanosleep is left out: Go runtimes (dockerd) call it thousands of times a second, and the
  // stacks copied for them would crowd out the rest; glibc's sleep() is clock_nanosleep.
  // Under `timeout`, so that a bench killed with -9 leaves no system-wide trace running for long.
  const perf: ChildProcess = spawn('timeout', ['900', 'perf', 'trace', '-a', '-m', '1024', '--duration', '900', '-e', 'clock_nanosleep,select,pselect6', '--call-graph', 'dwarf,8192', '-o', file], { stdio: 'ignore' });
  onCleanup(() => void perf.kill('SIGINT'));
  const owner = new Map<number, { target: string; comm: string }>();
  let running = true;
  const sampler = (async () => {
    while (running) {
      const byGroup = new Map<number, string>();
      for (const [target, groups] of Object.entries(groupsOf)) for (const g of groups()) byGroup.set(g, target);
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const group = processGroup(Number(entry));
        const target = group === undefined ? undefined : byGroup.get(group);
        if (target && !owner.has(Number(entry))) owner.set(Number(entry), { target, comm: comm(Number(entry)) });
      }
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await sampler;
      await sleep(300); // let the last sleeps end and be written
      perf.kill('SIGINT');
      await new Promise((resolve) => {
        if (perf.exitCode !== null) resolve(undefined);
        perf.once('exit', resolve);
        setTimeout(resolve, 5000);
      });
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        // perf wrote nothing
      }
      if (process.env.BENCH_KEEP_PERF) process.stderr.write(`# perf trace output kept: ${file}\n`);
      else rmSync(file, { force: true });
      return parsePerfTrace(text).flatMap((e) => {
        const known = owner.get(e.pid);
        // perf shows ":PID" when it lost the process's comm event; the sampler saw the name.
        return known ? [{ target: known.target, comm: e.comm.startsWith(':') ? known.comm || e.comm : e.comm, syscall: e.syscall, ms: e.ms, caller: e.caller }] : [];
      });
    },
  };
}

export interface FlowCheck {
  label: string;
  stalls: Record<string, number>;
  perSecond: number;
  sleeps: SleepEvent[];
}

/**
 * The mechanism on demand: Postfix's queue manager is paused (SIGSTOP) for 3 s in the middle of an
 * 8 × 20 run, so that mail arrives faster than it is picked up, as under saturation.
 */
export async function flowControlCheck(
  targets: Array<{ label: string; port: number; masterPid: () => number | undefined; groups: () => number[] }>,
  run: (port: number) => Promise<{ perSecond: number; stalls: Record<string, number> }>,
): Promise<FlowCheck[]> {
  const out: FlowCheck[] = [];
  for (const t of targets) {
    const tracer = traceSleeps({ [t.label]: t.groups });
    const load = run(t.port);
    await sleep(2500);
    const master = t.masterPid();
    const qmgr = master === undefined ? undefined : readdirSync('/proc').map(Number).find((pid) => pid > 0 && processGroup(pid) === master && comm(pid) === 'qmgr');
    if (qmgr !== undefined) process.kill(qmgr, 'SIGSTOP');
    await sleep(3000);
    if (qmgr !== undefined) process.kill(qmgr, 'SIGCONT');
    const result = await load;
    out.push({ label: t.label, stalls: result.stalls, perSecond: result.perSecond, sleeps: tracer ? await tracer.stop() : [] });
  }
  return out;
}

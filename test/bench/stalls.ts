// Which process waits, and where, when a command stalls for ~1 s: `perf trace` records every sleep
// of 900 ms or more on the machine (clock_nanosleep/nanosleep only, so it costs next to nothing)
// with its user stack; each sleeping pid is attributed to a target by its process group, sampled
// while the run goes on.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { processGroup } from './proc.ts';
import { sleep } from './stats.ts';

export interface SleepEvent {
  target: string;
  comm: string;
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

const LIBC = /^(__GI_|__sleep|__nanosleep|__clock_nanosleep|clock_nanosleep|nanosleep|sleep|usleep|\[unknown\]|\[0x)/;

export function parsePerfTrace(text: string): Array<{ pid: number; comm: string; ms: number; caller: string }> {
  const out: Array<{ pid: number; comm: string; ms: number; caller: string; frames: string[] }> = [];
  for (const line of text.split('\n')) {
    const head = /^\s*[\d.]+ \(\s*([\d.]+) ms\): (.+?)\/(\d+) (\w+)\(/.exec(line);
    if (head) {
      out.push({ ms: Number(head[1]), comm: head[2]!, pid: Number(head[3]), caller: '', frames: [] });
      continue;
    }
    const frame = /^\s+(\S+) \(/.exec(line) ?? /^\s+(\[[^\]]+\])/.exec(line);
    if (frame && out.length) out.at(-1)!.frames.push(frame[1]!);
  }
  return out.map(({ frames, ...e }) => {
    const named = frames.filter((f) => !LIBC.test(f)).slice(0, 2);
    return { ...e, caller: named.length ? named.join(' ← ') : frames.length ? 'libc sleep (no symbols above it)' : '(no stack)' };
  });
}

/** Starts perf trace and the pid → target sampler; stop() returns the attributed sleeps. */
export function traceSleeps(groupsOf: Record<string, () => number[]>): { stop: () => Promise<SleepEvent[]> } | undefined {
  if (!perfAvailable()) return undefined;
  const file = `/tmp/rbbench-perf-${process.pid}-${Date.now()}.txt`;
  const perf: ChildProcess = spawn('perf', ['trace', '-a', '--duration', '900', '-e', 'clock_nanosleep,nanosleep', '--call-graph', 'dwarf,16384', '-o', file], { stdio: 'ignore' });
  const owner = new Map<number, string>();
  let running = true;
  const sampler = (async () => {
    while (running) {
      const byGroup = new Map<number, string>();
      for (const [target, groups] of Object.entries(groupsOf)) for (const g of groups()) byGroup.set(g, target);
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const group = processGroup(Number(entry));
        const target = group === undefined ? undefined : byGroup.get(group);
        if (target) owner.set(Number(entry), target);
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
      rmSync(file, { force: true });
      return parsePerfTrace(text).flatMap((e) => {
        const target = owner.get(e.pid);
        return target ? [{ target, comm: e.comm, ms: e.ms, caller: e.caller }] : [];
      });
    },
  };
}

// The milters on their own: rspamd (the filter) and OpenDKIM (the signer), each started from
// relaybox's rendered configuration in a scratch directory: spawn → its milter socket answers the
// option negotiation, then its memory (RSS and PSS summed over its processes) once it has settled.
// rspamd cold: an empty hyperscan cache; warm: seeded from the image's compiled cache.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Sink } from '../helpers/instance.ts';
import { RSPAMD_CACHE_SEED } from '../../src/daemons/rspamd.ts';
import { probeMilter } from '../../src/protocol/milter.ts';
import { P, log, onCleanup, startInstance } from './common.ts';
import { groupsMemory, groupMembers } from './proc.ts';
import { fmt, sleep } from './stats.ts';

export interface MilterTrial {
  ms: number;
  rss: number;
  pss: number;
  processes: number;
}

export interface DaemonStartResults {
  rspamdCold: MilterTrial[];
  rspamdWarm: MilterTrial[];
  opendkim: MilterTrial[];
  seeded: boolean;
  errors: string[];
}

const SETTLE_MS = 2000;

function ids(user: string): { uid: number; gid: number } {
  return { uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })) };
}

/** Copies a rendered directory, moving every path of `from` to `to`. */
function copyRendered(src: string, dst: string, from: string, to: string): void {
  mkdirSync(dst, { recursive: true });
  for (const name of readdirSync(src)) {
    const path = `${src}/${name}`;
    if (statSync(path).isDirectory()) copyRendered(path, `${dst}/${name}`, from, to);
    else writeFileSync(`${dst}/${name}`, readFileSync(path, 'utf8').replaceAll(from, to));
  }
}

/** ms from `t0` (just before the spawn) until the socket answers the milter option negotiation. */
async function timeToAnswer(child: ChildProcess, socket: string, timeoutMs: number, t0: number): Promise<number> {
  while (performance.now() - t0 < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    if ((await probeMilter(socket, 1000)).ok) return performance.now() - t0;
    await sleep(10);
  }
  throw new Error(`no answer on ${socket} within ${timeoutMs} ms`);
}

/** SIGKILL to the whole group (a graceful stop is not measured here; OpenDKIM's own takes ~4 s). */
async function end(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && groupMembers(child.pid).length > 0; i++) await sleep(100);
}

async function trial(command: string, args: string[], socket: string, timeoutMs: number): Promise<MilterTrial> {
  const t0 = performance.now();
  const child = spawn(command, args, { detached: true, stdio: 'ignore' });
  try {
    const ms = await timeToAnswer(child, socket, timeoutMs, t0);
    await sleep(SETTLE_MS);
    return { ms, ...groupsMemory([child.pid!]) };
  } finally {
    await end(child);
  }
}

export async function daemonStartTrials(sink: Sink): Promise<DaemonStartResults> {
  const out: DaemonStartResults = { rspamdCold: [], rspamdWarm: [], opendkim: [], seeded: existsSync(RSPAMD_CACHE_SEED), errors: [] };
  // relaybox renders (and generates the DKIM key) on its start; its files are used as they are.
  const inst = await startInstance({}, { sink });
  await inst.stop();
  const state = inst.stateDir;
  onCleanup(() => rmSync(state, { recursive: true, force: true }));
  const scratch = mkdtempSync('/tmp/rbbench-milter-');
  onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
  execFileSync('chmod', ['755', scratch]);
  const rspamdUser = ids('_rspamd');

  copyRendered(`${state}/rspamd`, `${scratch}/rspamd`, state, scratch);
  const rspamdArgs = ['-f', '-u', '_rspamd', '-g', '_rspamd', '-c', `${scratch}/rspamd/rspamd.conf`, `--var=LOCAL_CONFDIR=${scratch}/rspamd`, `--var=DBDIR=${scratch}/rspamd-db`, `--var=RUNDIR=${scratch}/rspamd-run`];
  const rspamdSocket = `${scratch}/queue/rspamd/milter.sock`;
  const freshRspamdDirs = (seed: boolean) => {
    for (const dir of ['rspamd-db', 'rspamd-run', 'queue/rspamd']) rmSync(`${scratch}/${dir}`, { recursive: true, force: true });
    for (const dir of ['rspamd-db', 'rspamd-db/hs', 'rspamd-run', 'queue/rspamd']) {
      mkdirSync(`${scratch}/${dir}`, { recursive: true });
      chownSync(`${scratch}/${dir}`, rspamdUser.uid, rspamdUser.gid);
    }
    if (seed && out.seeded) {
      for (const name of readdirSync(RSPAMD_CACHE_SEED)) {
        copyFileSync(`${RSPAMD_CACHE_SEED}/${name}`, `${scratch}/rspamd-db/hs/${name}`);
        chownSync(`${scratch}/rspamd-db/hs/${name}`, rspamdUser.uid, rspamdUser.gid);
      }
    }
  };
  const series: Array<[string, number, boolean, MilterTrial[]]> = [
    ['rspamd cold', P.rspamdCold, false, out.rspamdCold],
    ['rspamd warm', P.rspamdWarm, true, out.rspamdWarm],
  ];
  for (const [label, trials, seed, into] of series) {
    for (let i = 0; i < trials; i++) {
      try {
        freshRspamdDirs(seed);
        into.push(await trial('rspamd', rspamdArgs, rspamdSocket, 180_000));
      } catch (error) {
        out.errors.push(`${label}: ${(error as Error).message}`);
      }
      const t = into.at(-1);
      log(`${label} ${i + 1}/${trials}: answers after ${fmt(t?.ms ?? Number.NaN)} ms, RSS ${fmt(t?.rss ?? Number.NaN, 1)} / PSS ${fmt(t?.pss ?? Number.NaN, 1)} MiB in ${t?.processes} processes`);
    }
  }

  // OpenDKIM: the rendered configuration with its socket and pid file moved to the scratch directory.
  const dkim = ids('opendkim');
  const postfixGid = ids('postfix').gid;
  for (const dir of ['opendkim', 'queue/opendkim']) {
    mkdirSync(`${scratch}/${dir}`, { recursive: true });
    chownSync(`${scratch}/${dir}`, dkim.uid, postfixGid);
  }
  for (const name of ['opendkim.conf', 'KeyTable', 'SigningTable']) {
    writeFileSync(`${scratch}/opendkim/${name}`, readFileSync(`${state}/opendkim/${name}`, 'utf8').replaceAll(`${state}/queue/opendkim/`, `${scratch}/queue/opendkim/`).replaceAll(`${state}/opendkim/`, `${scratch}/opendkim/`));
  }
  for (let i = 0; i < P.opendkimTrials; i++) {
    try {
      rmSync(`${scratch}/queue/opendkim/opendkim.sock`, { force: true });
      rmSync(`${scratch}/opendkim/opendkim.pid`, { force: true });
      out.opendkim.push(await trial('opendkim', ['-f', '-x', `${scratch}/opendkim/opendkim.conf`], `${scratch}/queue/opendkim/opendkim.sock`, 15_000));
    } catch (error) {
      out.errors.push(`opendkim: ${(error as Error).message}`);
    }
    const t = out.opendkim.at(-1);
    log(`opendkim ${i + 1}/${P.opendkimTrials}: answers after ${fmt(t?.ms ?? Number.NaN)} ms, RSS ${fmt(t?.rss ?? Number.NaN, 1)} / PSS ${fmt(t?.pss ?? Number.NaN, 1)} MiB`);
  }
  return out;
}

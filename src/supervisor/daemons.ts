// How Postfix and Dovecot are launched, awaited, stopped and cleaned up after a crash.
import { setTimeout as wait } from 'node:timers/promises';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import type { StatePaths } from '../render/paths.ts';
import type { DaemonSpec } from './daemon.ts';
import { parseDovecotLine, parsePostfixLine, type DaemonLogLine } from './daemon-log.ts';
import { probeSasl } from './probes.ts';
import { processGroup } from './proc.ts';

async function poll(what: string, signal: AbortSignal, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (signal.aborted) throw new Error(`stopped while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await wait(20);
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && processGroup(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function postfixSpec(paths: StatePaths, demote: (line: DaemonLogLine) => boolean): DaemonSpec {
  return {
    name: 'postfix',
    command: 'postfix',
    args: ['-c', paths.postfix, 'start-fg'],
    parseLine: parsePostfixLine,
    demote,
    logFifo: paths.postfixLogFifo,
    prepare: () => {
      rmSync(paths.masterPid, { force: true });
      // The queue was checked (`postfix check`) at this start; skip the slow re-check on every launch.
      writeFileSync(`${paths.queue}/quick-start`, '');
    },
    waitStarted: (signal) => poll('the Postfix master to start', signal, 15_000, () => readPid(paths.masterPid) !== undefined),
    stopGracefully: async () => {
      await execa('postfix', ['-c', paths.postfix, 'stop'], { reject: false, timeout: 8000 });
    },
    // The master makes itself a session leader, so its children are in its own group.
    extraGroups: () => {
      const pid = readPid(paths.masterPid);
      return pid === undefined ? [] : [pid];
    },
  };
}

/** Retries every queued message now (deferred mail would otherwise wait out its backoff, up to hours). */
export async function flushPostfixQueue(paths: StatePaths): Promise<void> {
  await execa('postqueue', ['-c', paths.postfix, '-f'], { timeout: 10_000 });
}

export async function reloadPostfix(paths: StatePaths): Promise<void> {
  await execa('postfix', ['-c', paths.postfix, 'reload'], { timeout: 10_000 });
}

export function dovecotSpec(paths: StatePaths, demote: (line: DaemonLogLine) => boolean): DaemonSpec {
  return {
    name: 'dovecot',
    command: 'dovecot',
    args: ['-F', '-c', paths.dovecotConf],
    parseLine: parseDovecotLine,
    demote,
    prepare: () => {
      rmSync(`${paths.dovecotBase}/master.pid`, { force: true });
      rmSync(paths.authSocket, { force: true });
    },
    waitStarted: (signal) => poll("Dovecot's auth socket", signal, 15_000, async () => (await probeSasl(paths.authSocket, 1000)).ok),
    stopGracefully: async (pid) => {
      process.kill(pid, 'SIGTERM');
    },
    extraGroups: () => [],
  };
}

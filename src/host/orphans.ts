// Daemons of this STATE_DIR left running by a supervisor that was killed with -9: their pid files
// still name them. Each daemon declares how to recognise its own master; its process group is ended
// before anything starts, since it still holds the listening sockets.
import { readFileSync } from 'node:fs';
import { setTimeout as wait } from 'node:timers/promises';
import type { Logger } from 'pino';
import { commandName, groupMembers, processGroup } from './processes.ts';

export interface OrphanSignature {
  pidFile: string;
  /** True when the pid is really this STATE_DIR's daemon (not a recycled pid). */
  ours: (pid: number) => boolean;
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function endOrphans(signatures: OrphanSignature[], log: Logger): Promise<void> {
  for (const { pidFile, ours } of signatures) {
    const pid = readPidFile(pidFile);
    const group = pid === undefined ? undefined : processGroup(pid);
    if (pid === undefined || group === undefined || !ours(pid)) continue;
    log.warn({ event: 'orphan_ended', pid }, `ending ${commandName(pid)} (pid ${pid}), left running by an earlier start of this STATE_DIR`);
    process.kill(-group, 'SIGKILL');
    for (let i = 0; i < 100 && groupMembers([group]).length > 0; i++) await wait(20);
  }
}

// OpenDKIM: signs what authenticated users and TRUSTED_NETWORKS send (Postfix attaches it as a milter).
import { rmSync } from 'node:fs';
import { commandName } from '../host/processes.ts';
import { probeMilter } from '../protocol/milter.ts';
import { pollUntil } from './daemon.ts';
import type { DaemonContext, DaemonDeclaration } from './declaration.ts';
import type { DaemonLogLine } from './log-line.ts';

/** OpenDKIM logs to syslog only; what reaches its stderr is start-up trouble. */
export function parseOpendkimLine(line: string): DaemonLogLine {
  const msg = line.replace(/^opendkim: /, '');
  return { level: /error|cannot|can't|failed|unable|invalid/i.test(msg) ? 'error' : 'info', program: 'opendkim', msg };
}

export function opendkim({ config, paths }: DaemonContext): DaemonDeclaration | undefined {
  if (!config.dkim) return undefined;
  return {
    name: 'opendkim',
    needs: [],
    command: 'opendkim',
    args: ['-f', '-x', paths.opendkimConf],
    parseLine: parseOpendkimLine,
    prepare: () => {
      rmSync(paths.opendkimSocket, { force: true });
      rmSync(paths.opendkimPid, { force: true });
    },
    waitStarted: (signal) => pollUntil("OpenDKIM's milter socket", signal, 15_000, async () => (await probeMilter(paths.opendkimSocket, 1000)).ok),
    probes: [{ name: 'dkim-signer', run: () => probeMilter(paths.opendkimSocket) }],
    // SIGUSR1: re-read the configuration and the key and signing tables (new keys, new selectors).
    reload: async (pid) => {
      if (pid !== undefined) process.kill(pid, 'SIGUSR1');
    },
    // It keeps no state (a message being signed gets 451 and is sent again); its SIGTERM takes ~4 s.
    stop: { gracefully: async (pid) => void process.kill(pid, 'SIGKILL'), graceMs: 100 },
    extraGroups: () => [],
    orphan: { pidFile: paths.opendkimPid, ours: (pid) => commandName(pid).includes(paths.opendkimConf) },
  };
}

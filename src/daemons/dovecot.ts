// Dovecot: SASL for Postfix's submission ports, LMTP delivery into the mailboxes, IMAP (in ROLE=relay
// authentication only, in ROLE=mailbox LMTP over TCP and IMAP).
import { rmSync } from 'node:fs';
import { commandName } from '../host/processes.ts';
import { probeSasl } from '../protocol/probes.ts';
import { pollUntil } from './daemon.ts';
import type { DaemonDeclaration, DaemonContext } from './declaration.ts';
import type { DaemonLogLine, Level } from './log-line.ts';

// "auth: Info: ..." or "imap-login: Info: Login: user=<...>" (log_timestamp is empty)
const LINE = /^(.*?): (Debug|Info|Warning|Error|Fatal|Panic): (.*)$/;
const LEVELS: Record<string, Level> = { Debug: 'debug', Info: 'info', Warning: 'warn', Error: 'error', Fatal: 'fatal', Panic: 'fatal' };

export function parseDovecotLine(line: string): DaemonLogLine {
  const match = LINE.exec(line);
  if (!match) return { level: /^(Error|Fatal)/.test(line) ? 'error' : 'info', msg: line };
  return { level: LEVELS[match[2]!]!, program: match[1]!, msg: match[3]! };
}

export function dovecot({ paths }: DaemonContext): DaemonDeclaration {
  const masterPid = `${paths.dovecotBase}/master.pid`;
  return {
    name: 'dovecot',
    needs: [],
    command: 'dovecot',
    args: ['-F', '-c', paths.dovecotConf],
    parseLine: parseDovecotLine,
    prepare: () => {
      rmSync(masterPid, { force: true });
      rmSync(paths.authSocket, { force: true });
    },
    waitStarted: (signal) => pollUntil("Dovecot's auth socket", signal, 15_000, async () => (await probeSasl(paths.authSocket, 1000)).ok),
    probes: [{ name: 'sasl', run: () => probeSasl(paths.authSocket) }],
    reload: async (pid) => {
      if (pid !== undefined) process.kill(pid, 'SIGHUP');
    },
    // The whole process group: with children left, the master sleeps 1 s after telling them to quit.
    stop: {
      gracefully: async (pid) => void process.kill(-pid, 'SIGTERM'),
      graceMs: 2000,
    },
    extraGroups: () => [],
    orphan: { pidFile: masterPid, ours: (pid) => commandName(pid).includes(paths.dovecotConf) },
  };
}

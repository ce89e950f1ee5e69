// Postfix: the SMTP listeners, the queue, delivery upstream and to Dovecot over LMTP.
import { rmSync } from 'node:fs';
import { command } from '../host/command.ts';
import type { Logger } from 'pino';
import { countFiles } from '../host/files.ts';
import { readPidFile } from '../host/orphans.ts';
import { commandName, processGroup, workingDirectory } from '../host/processes.ts';
import type { StatePaths } from '../render/paths.ts';
import { pollUntil } from './daemon.ts';
import type { DaemonContext, DaemonDeclaration } from './declaration.ts';
import type { DaemonLogLine, Level } from './log-line.ts';

// "Nov 26 02:00:00 mail.example.com postfix/smtpd[123]: warning: ..."
const LINE = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ([\w/.-]+)\[(\d+)\]: (.*)$/;
const LEVELS: Record<string, Level> = { warning: 'warn', error: 'error', fatal: 'fatal', panic: 'fatal' };

export function parsePostfixLine(line: string): DaemonLogLine {
  const match = LINE.exec(line);
  const program = match?.[1];
  const msg = match?.[3] ?? line;
  const prefix = /^(warning|error|fatal|panic): /.exec(msg)?.[1];
  const level = prefix ? LEVELS[prefix]! : 'info';
  return { level, msg, ...(program ? { program, pid: Number(match?.[2]) } : {}) };
}

/** The master's pid while it runs. */
function masterPid(paths: StatePaths): number | undefined {
  const pid = readPidFile(paths.masterPid);
  return pid !== undefined && processGroup(pid) !== undefined ? pid : undefined;
}

const postfixCommand = (paths: StatePaths, ...args: string[]) => command('postfix', ['-c', paths.postfix, ...args], { timeoutMs: 10_000 });

async function flushDeferred(paths: StatePaths, log: Logger, why: string): Promise<void> {
  if (countFiles(`${paths.queue}/deferred`) === 0) return;
  await command('postqueue', ['-c', paths.postfix, '-f'], { timeoutMs: 10_000 });
  log.info({ event: 'queue_flush' }, why);
}

/** Debian's daemon_directory (`postconf -d daemon_directory`). */
const MASTER = '/usr/lib/postfix/sbin/master';

export function postfix({ config, paths }: DaemonContext): DaemonDeclaration | undefined {
  if (config.role === 'mailbox') return undefined; // the relay replicas deliver to it over LMTP
  return {
    name: 'postfix',
    // smtpd on the submission ports authenticates through Dovecot's socket, and has mail signed.
    needs: ['dovecot', ...(config.dkim ? ['opendkim'] : [])],
    // smtpd opens the auth socket and the milter only for a client's session.
    waitsForNeeds: false,
    // The master itself (what `postfix start-fg` runs after a shell script and two checks): ~30 ms sooner.
    command: MASTER,
    args: ['-c', paths.postfix, '-s'],
    parseLine: parsePostfixLine,
    logFifo: paths.postfixLogFifo,
    prepare: () => rmSync(paths.masterPid, { force: true }),
    waitStarted: (signal) => pollUntil('the Postfix master to start', signal, 15_000, () => masterPid(paths) !== undefined),
    probes: [],
    reload: async () => {
      await postfixCommand(paths, 'reload');
    },
    // What `postfix stop` does, without its 1 s polling: the master passes SIGTERM to its process group
    // and exits. Queue files are safe: a message is acknowledged only once it is on disk.
    stop: {
      gracefully: async (pid) => void process.kill(pid, 'SIGTERM'),
      graceMs: 5000,
    },
    // The master makes itself a session leader, so its children are in its own group.
    extraGroups: () => {
      const pid = masterPid(paths);
      return pid === undefined ? [] : [pid];
    },
    orphan: { pidFile: paths.masterPid, ours: (pid) => commandName(pid).includes('postfix/sbin/master') && workingDirectory(pid) === paths.queue },
    // Mail deferred before this start (say, the upstream was down) is retried now, not hours later.
    afterStart: async (log) => {
      // postsuper's start-up care that `postfix check` used to give: queue file names, stale temporary files.
      void command('postsuper', ['-c', paths.postfix], { reject: false, timeoutMs: 60_000 });
      await flushDeferred(paths, log, 'retrying the mail queued before this start');
    },
    // Deliveries to Dovecot deferred while it was down would otherwise wait out the retry backoff (5 min and more).
    onDependencyRestarted: (log) => flushDeferred(paths, log, 'retrying the mail deferred while a daemon Postfix needs was down'),
  };
}

// `relaybox run`: prepare STATE_DIR, render the configuration, start the daemons under supervision,
// serve /health and /ready, and stop everything cleanly on SIGTERM/SIGINT.
import { setTimeout as wait } from 'node:timers/promises';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { execa } from 'execa';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { buildHttpServer } from '../http/server.ts';
import { renderAll } from '../render/index.ts';
import { statePaths, type StatePaths } from '../render/paths.ts';
import { ensureMailboxUser } from '../state/accounts.ts';
import { writeRendered } from '../state/files.ts';
import { copyChrootFiles, ensureTls, firstRunUsers, prepareDirectories } from '../state/prepare.ts';
import { portProblems } from './ports.ts';
import { commandName, groupMembers, processGroup } from './proc.ts';
import { Reloader } from './reload.ts';
import { Supervisor } from './supervisor.ts';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;
/** After a crash loop, /health says 503 this long before the process exits (so a restart policy acts). */
const CRASH_LOOP_EXIT_DELAY_MS = 15_000;
const SHUTDOWN_DEADLINE_MS = 9000;

/** Renders every daemon file from the config (at start and on every reload). */
async function renderState(config: Config, paths: StatePaths, vmail: { uid: number; gid: number }, log: Logger) {
  const tls = await ensureTls(config, paths, log);
  const users = await firstRunUsers(config, paths, log);
  writeRendered(renderAll({ config, users, tls, vmail }));
  return tls;
}

async function prepare(config: Config, log: Logger) {
  const paths = statePaths(config.stateDir);
  const vmail = await ensureMailboxUser();
  prepareDirectories(paths, vmail);
  const tls = await renderState(config, paths, vmail, log);
  copyChrootFiles(paths);
  // Creates the queue tree (Dovecot binds its auth socket in queue/private) and checks ownership once.
  const check = await execa('postfix', ['-c', paths.postfix, 'check'], { reject: false, all: true });
  for (const line of check.all.split('\n').filter(Boolean)) log.warn({ event: 'postfix_check' }, line);
  if (check.exitCode !== 0) throw new Error(`postfix check failed (exit ${check.exitCode})`);
  return { paths, tls, vmail };
}

/**
 * Daemons of this STATE_DIR left running by a supervisor that was killed with -9 (their pid files
 * still name them, and Dovecot's command line names our config): end their process groups first.
 */
async function endOrphans(paths: StatePaths, log: Logger): Promise<void> {
  const owners: Array<[string, (pid: number) => boolean]> = [
    [paths.masterPid, (pid) => commandName(pid).includes('postfix/sbin/master') && workingDirectory(pid) === paths.queue],
    [`${paths.dovecotBase}/master.pid`, (pid) => commandName(pid).includes(paths.dovecotConf)],
  ];
  for (const [pidFile, ours] of owners) {
    const pid = readPidFile(pidFile);
    const group = pid === undefined ? undefined : processGroup(pid);
    if (pid === undefined || group === undefined || !ours(pid)) continue;
    log.warn({ event: 'orphan_ended', pid }, `ending ${commandName(pid)} (pid ${pid}), left running by an earlier start of this STATE_DIR`);
    process.kill(-group, 'SIGKILL');
    // Their listening sockets close only when they are gone.
    for (let i = 0; i < 100 && groupMembers([group]).length > 0; i++) await wait(20);
  }
}

function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function workingDirectory(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

export async function runSupervisor(config: Config, root: Logger): Promise<number> {
  const started = performance.now();
  const log = root.child({ service: 'supervisor' });
  if (existsSync(config.stateDir)) await endOrphans(statePaths(config.stateDir), log);
  const problems = await portProblems(config);
  if (problems.length > 0) {
    for (const problem of problems) {
      log.fatal({ event: 'port_in_use' }, problem);
      process.stderr.write(`relaybox: ${problem}\n`);
    }
    return EXIT_CONFIG;
  }
  const { paths, tls, vmail } = await prepare(config, log);
  const supervisor = new Supervisor(config, paths, tls, root);
  const http = buildHttpServer(supervisor, config);
  const reloader = new Reloader(
    process.env,
    async (next) => {
      await renderState(next, paths, vmail, log);
      await supervisor.reloadDaemons();
    },
    log,
  );

  let stopping: Promise<number> | undefined;
  const stop = (reason: string, code: number) => {
    stopping ??= (async () => {
      log.info({ event: 'shutdown', reason }, `stopping: ${reason}`);
      const deadline = setTimeout(() => {
        log.error({ event: 'shutdown_timeout' }, 'shutdown took too long; exiting');
        process.exit(code);
      }, SHUTDOWN_DEADLINE_MS);
      reloader.stop();
      await supervisor.stop();
      await http.close();
      clearTimeout(deadline);
      log.info({ event: 'stopped' }, 'all daemons stopped');
      return code;
    })();
    return stopping;
  };
  const done = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM', EXIT_OK).then(resolve));
    process.once('SIGINT', () => void stop('SIGINT', EXIT_OK).then(resolve));
  });

  if (config.ports.http > 0) {
    await http.listen({ port: config.ports.http, host: config.bindAddress ?? '::' });
    log.info({ event: 'http_listening', port: config.ports.http }, `serving /health and /ready on port ${config.ports.http}`);
  }
  try {
    await supervisor.start();
  } catch (error) {
    log.fatal({ event: 'start_failed', error: (error as Error).message }, `could not start: ${(error as Error).message}`);
    return stop('start failed', EXIT_FAILURE);
  }
  log.info({ event: 'started', ms: Math.round(performance.now() - started) }, 'daemons started');
  reloader.start();
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));

  const watchCrashLoop = setInterval(() => {
    if (supervisor.crashLoop) {
      clearInterval(watchCrashLoop);
      setTimeout(() => void stop('crash loop', EXIT_FAILURE).then((code) => process.exit(code)), CRASH_LOOP_EXIT_DELAY_MS);
    }
  }, 1000);
  const code = await done;
  clearInterval(watchCrashLoop);
  return code;
}

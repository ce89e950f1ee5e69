// rspamd: the content filter on port 25 (SPF, DKIM, DMARC, spam score, GTUBE), a milter for Postfix.
// relaybox serves without it (port 25 answers 451 meanwhile), so it does not hold up /ready.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, copyFile } from 'node:fs/promises';
import { userIds } from '../host/accounts.ts';
import { commandName } from '../host/processes.ts';
import { probeMilter } from '../protocol/milter.ts';
import type { StatePaths } from '../render/paths.ts';
import { pollUntil } from './daemon.ts';
import type { DaemonContext, DaemonDeclaration } from './declaration.ts';
import type { DaemonLogLine } from './log-line.ts';

/** Compiled once at image build (docker/rspamd-cache.sh): without it the first start takes ~11 s. */
export const RSPAMD_CACHE_SEED = '/var/cache/relaybox/rspamd-hs';

// "#1234(rspamd_proxy) <c8ef27>; proxy; rspamd_task_write_log: id: <...>, ..." (console logging, no
// level; the first line, written before the configuration is read, has a timestamp in front).
const LINE = /^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d )?#(\d+)\(([\w-]+)\) (?:<[^>]*>; )?([^;]*); (.*)$/;
/** Offline, the refresh of rspamd's remote maps fails every few seconds; the local copies serve. */
const OFFLINE_NOISE = /cannot resolve maps\.rspamd\.com|cannot load controller stats/;

export function parseRspamdLine(line: string): DaemonLogLine {
  const match = LINE.exec(line);
  const msg = match ? `${match[3]}; ${match[4]}` : line;
  const level = OFFLINE_NOISE.test(msg) ? 'debug' : /\b(error|cannot init|fatal)\b/i.test(msg) ? 'warn' : 'info';
  return { level, msg, ...(match ? { program: `rspamd/${match[2]}`, pid: Number(match[1]) } : {}) };
}

/**
 * Copies the image's compiled hyperscan cache into STATE_DIR once (rspamd rewrites it there if the
 * CPU differs). ~90 MB: copied off the event loop, so the other daemons' start does not wait for it.
 */
async function seedCache(paths: StatePaths): Promise<void> {
  const cache = `${paths.rspamdDb}/hs`;
  if (!existsSync(RSPAMD_CACHE_SEED) || readdirSync(cache).length > 0) return;
  const owner = userIds('_rspamd');
  await Promise.all(
    readdirSync(RSPAMD_CACHE_SEED).map(async (name) => {
      await copyFile(`${RSPAMD_CACHE_SEED}/${name}`, `${cache}/${name}`);
      if (owner) await chown(`${cache}/${name}`, owner.uid, owner.gid);
    }),
  );
}

export function rspamd({ config, paths }: DaemonContext): DaemonDeclaration | undefined {
  if (!config.filter) return undefined;
  const pidFile = `${paths.rspamdRun}/rspamd.pid`;
  return {
    name: 'rspamd',
    needs: [],
    optional: true,
    command: 'rspamd',
    args: ['-f', '-u', '_rspamd', '-g', '_rspamd', '-c', paths.rspamdConf, `--var=LOCAL_CONFDIR=${paths.rspamd}`, `--var=DBDIR=${paths.rspamdDb}`, `--var=RUNDIR=${paths.rspamdRun}`],
    parseLine: parseRspamdLine,
    prepare: async () => {
      rmSync(paths.rspamdSocket, { force: true });
      rmSync(pidFile, { force: true });
      await seedCache(paths);
    },
    // A first start without a compiled cache takes ~11 s on two cores; give it room.
    waitStarted: (signal) => pollUntil("rspamd's milter socket", signal, 120_000, async () => (await probeMilter(paths.rspamdSocket, 1000)).ok),
    probes: [{ name: 'filter', run: () => probeMilter(paths.rspamdSocket) }],
    reload: async (pid) => {
      if (pid !== undefined) process.kill(pid, 'SIGHUP');
    },
    // Nothing it keeps matters (a message being scanned gets 451 and is sent again); its SIGTERM takes ~2 s.
    stop: { gracefully: async (pid) => void process.kill(-pid, 'SIGKILL'), graceMs: 100 },
    extraGroups: () => [],
    orphan: { pidFile, ours: (pid) => commandName(pid).includes('rspamd') },
  };
}

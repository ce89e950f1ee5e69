// Memory: the whole relaybox process tree at idle (RSS and PSS per daemon, from smaps_rollup), and
// where the supervisor's RSS comes from (a bare node, then each dependency imported alone).
import { execFileSync } from 'node:child_process';
import type { Instance } from '../helpers/instance.ts';
import { statePaths } from '../../src/render/paths.ts';
import { HERE, P, readyBody } from './common.ts';
import { groupsMemory, memoryOf, processGroup, readPid } from './proc.ts';
import { median } from './stats.ts';

export interface TreeMemory {
  /** Per daemon (and the supervisor): summed RSS and PSS in MiB, process count. */
  parts: Array<{ name: string; rss: number; pss: number; processes: number }>;
}

export async function treeMemory(inst: Instance): Promise<TreeMemory> {
  const paths = statePaths(inst.stateDir);
  const { body } = await readyBody(inst);
  const parts: TreeMemory['parts'] = [];
  const sup = memoryOf(inst.child!.pid!);
  parts.push({ name: 'supervisor (node)', rss: sup.rss, pss: sup.pss, processes: 1 });
  for (const [name, d] of Object.entries(body.daemons ?? {})) {
    const groups = new Set<number>();
    const g = d.pid === undefined ? undefined : processGroup(d.pid);
    if (g !== undefined) groups.add(g);
    const extra = name === 'postfix' ? readPid(paths.masterPid) : name === 'dovecot' ? readPid(`${paths.dovecotBase}/master.pid`) : undefined;
    const eg = extra === undefined ? undefined : processGroup(extra);
    if (eg !== undefined) groups.add(eg);
    parts.push({ name, ...groupsMemory([...groups]) });
  }
  return { parts };
}

export interface ImportRss {
  label: string;
  rss: number;
  heapUsed: number;
}

const VARIANTS: Array<[string, string[]]> = [
  ['bare node (nothing imported)', []],
  ['node builtins relaybox uses (http, net, tls, crypto, child_process, fs)', ['node:http', 'node:net', 'node:tls', 'node:crypto', 'node:child_process', 'node:fs']],
  ['fastify', ['fastify']],
  ['zod', ['zod']],
  ['execa', ['execa']],
  ['prom-client', ['prom-client']],
  ['pino', ['pino']],
  ['all five', ['fastify', 'zod', 'execa', 'prom-client', 'pino']],
  ['everything `relaybox run` loads (dist/app.js, not started)', ['dist/app.js']],
];

/** Median RSS of P.rssTrials fresh processes per variant (plain JS entry point, no type stripping). */
export function importBreakdown(): ImportRss[] {
  return VARIANTS.map(([label, modules]) => {
    const samples = Array.from({ length: P.rssTrials }, () => JSON.parse(execFileSync(process.execPath, [`${HERE}rss-probe.mjs`, ...modules], { encoding: 'utf8' })) as { rss: number; heapUsed: number });
    return { label, rss: median(samples.map((s) => s.rss)), heapUsed: median(samples.map((s) => s.heapUsed)) };
  });
}

// Placeholder results for the modules a partial run (--only) skips: the report shows them as n/a.
import type { AuthResults } from './auth.ts';
import type { ChaosResults } from './chaos.ts';
import type { ContainerResult } from './container.ts';
import type { DaemonStartResults } from './daemon-start.ts';
import { VICTIMS, type RecoveryResults, type Victim } from './recovery.ts';
import type { StartResults } from './start.ts';
import type { ThroughputResults } from './throughput.ts';

const none = { p50: Number.NaN, p99: Number.NaN, samples: 0, failures: 0, values: [] };
const byVictim = <T>(make: () => T) => Object.fromEntries(VICTIMS.map((v) => [v, make()])) as Record<Victim, T>;

export const empty = {
  start: (): StartResults => ({ cold: [], warm: [], stop: [], errors: [] }),
  recovery: (): RecoveryResults => ({ times: byVictim(() => []), notReadySeen: byVictim(() => 0), restarts: byVictim(() => 0), errors: [] }),
  container: (): ContainerResult => ({ ready: [], healthy: [], note: 'not run', healthNote: '', errors: [] }),
  milters: (): DaemonStartResults => ({ rspamdCold: [], rspamdWarm: [], opendkim: [], seeded: false, errors: [] }),
  throughput: (): ThroughputResults => ({
    runs: new Map(),
    sleeps: [],
    traced: false,
    idle: { cpu: Number.NaN, rssMax: Number.NaN, rssMedian: Number.NaN, seconds: Number.NaN, poll: { health: none, ready: none } },
    tree: { parts: [] },
    tickets: { firstReply: {}, load: new Map() },
    flow: [],
    mainCfDiff: '',
    errors: [],
  }),
  auth: (): AuthResults => ({ cells: new Map(), hashes: {} as AuthResults['hashes'], errors: [] }),
  chaos: (): ChaosResults => ({ kills: [], accepted: 0, acceptedByPort: { '587': 0, '25': 0 }, arrived: 0, lost: [], duplicates: 0, arrivedWithout250: 0, stillQueued: 0, flushedByHand: false, deferred: [], queuedAfter60: 0, queueAtEnd: [], notReadyMs: Number.NaN, durationMs: Number.NaN, failures: {}, restarts: {}, healthy: false }),
};

// When to restart a daemon that died or failed its probes, as a pure function (no clock, no I/O).
// Like supervisord's `startsecs`: a daemon that dies soon after it started is in a crash loop and
// waits longer each time; one that ran for a while and was then killed is restarted at once. More
// than `budget` restarts within `windowMs` and the supervisor gives up.

export interface RestartPolicy {
  /** A daemon that ran at least this long before dying was healthy: its backoff starts over. */
  startSecsMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  budget: number;
  windowMs: number;
}

export interface RestartHistory {
  /** When earlier restarts happened (only those inside the window matter). */
  times: number[];
  /** Consecutive restarts of a daemon that died within startSecsMs of starting. */
  quickDeaths: number;
}

export type RestartDecision =
  | { verdict: 'restart'; delayMs: number; history: RestartHistory }
  | { verdict: 'give-up'; restartsInWindow: number; history: RestartHistory };

export const NO_HISTORY: RestartHistory = { times: [], quickDeaths: 0 };

/** `ranForMs`: how long the daemon ran before this failure (0 when it never started). */
export function decideRestart(history: RestartHistory, now: number, ranForMs: number, policy: RestartPolicy): RestartDecision {
  const times = [...history.times.filter((t) => now - t < policy.windowMs), now];
  const quickDeaths = ranForMs < policy.startSecsMs ? history.quickDeaths + 1 : 0;
  const next = { times, quickDeaths };
  if (times.length > policy.budget) return { verdict: 'give-up', restartsInWindow: times.length - 1, history: next };
  // The first restart of a streak is immediate; each further quick death doubles the wait.
  const delayMs = quickDeaths <= 1 ? 0 : Math.min(policy.backoffCapMs, policy.backoffBaseMs * 2 ** (quickDeaths - 2));
  return { verdict: 'restart', delayMs, history: next };
}

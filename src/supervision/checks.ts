// The readiness checks (each daemon's own probes plus a greeting on each of its listeners) and the
// one readiness verdict that /ready, /metrics and the ready/not_ready log events all use.
import type { Probe, DaemonDeclaration } from '../daemons/declaration.ts';
import type { DaemonStatus } from '../daemons/daemon.ts';
import type { Listener } from '../listeners.ts';
import { probeGreeting, type ProbeResult } from '../protocol/probes.ts';

export interface Check extends Probe {
  /** The daemon that serves what this check probes; none for what the supervisor serves itself. */
  daemon?: string;
  /** For a check without a daemon: what to do once it has failed for a while (restarts no daemon). */
  recover?: () => Promise<void>;
  /** For a check without a daemon: its failure is reported as degraded, and /ready stays 200. */
  optional?: boolean;
}

/**
 * A check of something the supervisor serves or uses itself (e.g. a policy service, the shared
 * store): it counts for readiness, or, when optional, is reported as degraded.
 */
export type ServiceCheck = Probe & { recover?: () => Promise<void>; optional?: boolean };

/** Every check for the declared daemons; `listeners` are the enabled ones, probed on `host`. */
export function buildChecks(declarations: DaemonDeclaration[], listeners: Array<Listener & { port: number }>, host: string): Check[] {
  return declarations.flatMap((declaration) => [
    ...declaration.probes.map((probe) => ({ ...probe, daemon: declaration.name })),
    ...listeners
      .filter((listener) => listener.daemon === declaration.name && listener.protocol !== 'http')
      .map((listener) => ({
        name: `${listener.name}:${listener.port}`,
        daemon: declaration.name,
        run: () => probeGreeting(host, listener.port, listener.protocol === 'imap' ? 'imap' : 'smtp', listener.tls === 'implicit'),
      })),
  ]);
}

export interface CheckState extends Partial<ProbeResult> {
  ok: boolean;
  error?: string;
  /** Set when the failure comes from a daemon this check's daemon needs (e.g. SMTP AUTH needs Dovecot). */
  cause?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckState>;
  daemons: Record<string, DaemonStatus>;
  /** One line per failing check or daemon not running, for logs. */
  failing: string[];
  /** The same for optional daemons (e.g. the filter): reported, but /ready stays 200 for them. */
  degraded: string[];
}

/**
 * Ready when every daemon runs and every check passed its last probe. A failing check whose daemon
 * needs a daemon that is down is reported with that cause (and is not held against its own daemon).
 */
export function readiness(
  daemons: Record<string, DaemonStatus>,
  checks: Check[],
  results: ReadonlyMap<string, ProbeResult>,
  causes: ReadonlyMap<string, string> = new Map(),
  optional: ReadonlySet<string> = new Set(),
): Readiness {
  const states: Record<string, CheckState> = {};
  const failing: string[] = [];
  const degraded: string[] = [];
  const report = (daemon: string | undefined, line: string, optionalCheck = false) => (optionalCheck || (daemon !== undefined && optional.has(daemon)) ? degraded : failing).push(line);
  for (const [name, status] of Object.entries(daemons)) {
    if (status.state !== 'running') report(name, `${name}: ${status.state}${status.lastError ? ` (${status.lastError})` : ''}`);
  }
  for (const check of checks) {
    const result = results.get(check.name);
    const cause = causes.get(check.name);
    const state: CheckState = result ?? { ok: false, error: 'not checked yet' };
    states[check.name] = cause && !state.ok ? { ...state, cause } : state;
    if (!state.ok) report(check.daemon, `${check.name}: ${state.error}${cause ? ` (${cause})` : ''}`, check.optional === true);
  }
  return { ready: failing.length === 0, checks: states, daemons, failing, degraded };
}

export interface DependencyView {
  needs: (daemon: string) => string[];
  state: (daemon: string) => DaemonStatus['state'];
  checks: Check[];
  results: ReadonlyMap<string, ProbeResult>;
}

/** The first daemon that `daemon` needs (directly or not) which is down or failing its own checks. */
export function blockedBy(daemon: string, view: DependencyView, seen = new Set<string>()): string | undefined {
  for (const need of view.needs(daemon)) {
    if (seen.has(need)) continue;
    seen.add(need);
    const state = view.state(need);
    if (state !== 'running') return `${need} is ${state}`;
    const failing = view.checks.find((check) => check.daemon === need && view.results.get(check.name)?.ok === false);
    if (failing) return `${need} fails ${failing.name}`;
    const deeper = blockedBy(need, view, seen);
    if (deeper) return deeper;
  }
  return undefined;
}

// Keeps the declared daemons up: starts them in dependency order, probes them, restarts one that
// exits or stays unhealthy (restart-policy.ts), and stops them in reverse order. It knows no daemon
// by name: everything daemon-specific is in the declarations.
import { setTimeout as wait } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Daemon, type DaemonStatus } from '../daemons/daemon.ts';
import type { DaemonDeclaration } from '../daemons/declaration.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import type { Listener } from '../listeners.ts';
import type { ProbeResult } from '../protocol/probes.ts';
import { blockedBy, buildChecks, readiness, type Check, type Readiness, type ServiceCheck } from './checks.ts';
import { decideRestart, NO_HISTORY, type RestartHistory, type RestartPolicy } from './restart-policy.ts';
import { startWaves } from './start-order.ts';

const SUPERVISION = {
  /** Probe cadence while everything is healthy, and while something is not. */
  intervalMs: 2000,
  fastIntervalMs: 25,
  /** A check failing this long while its daemon (and what it needs) runs gets the daemon restarted. */
  failAfterMs: 4000,
  restart: { startSecsMs: 10_000, backoffBaseMs: 250, backoffCapMs: 30_000, windowMs: 5 * 60_000 },
};

/**
 * Work that can wait (loading the command runner, prom-client) starts this long after the first ready
 * verdict, so the /ready polls that follow the verdict are not answered behind it; or, if that
 * verdict does not come, this long after the start.
 */
const AFTER_READY = { delayMs: 300, fallbackMs: 5000 };

export interface SupervisorOptions {
  declarations: DaemonDeclaration[];
  /** The enabled listeners; each one's greeting is probed for the daemon that serves it. */
  listeners: Array<Listener & { port: number }>;
  probeHost: string;
  restartBudget: number;
  /** The root logger; each daemon and the supervisor get their own `service` child. */
  log: Logger;
  /** Daemon log lines that belong at debug level (the supervisor's own probe connections). */
  demote?: (line: DaemonLogLine) => boolean;
  /** Checks of what the supervisor serves itself; they count for readiness and restart no daemon. */
  serviceChecks?: ServiceCheck[];
}

export interface Health {
  healthy: boolean;
  error?: string;
  daemons: Record<string, DaemonStatus>;
}

export class Supervisor {
  readonly checks: Check[];
  private readonly daemons = new Map<string, Daemon>();
  private readonly policy: RestartPolicy;
  private readonly log: Logger;
  private readonly results = new Map<string, ProbeResult>();
  private readonly causes = new Map<string, string>();
  private readonly failingSince = new Map<string, number>();
  private readonly history = new Map<string, RestartHistory>();
  private readonly restarting = new Set<string>();
  private readonly lineListeners: Array<(daemon: string, line: DaemonLogLine) => void> = [];
  private readonly abort = new AbortController();
  private crashLoop: string | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private wasReady = false;
  private readonly firstReady = Promise.withResolvers<void>();
  /** Resolves when the work that can wait may begin (AFTER_READY); the composition root loads the metrics then. */
  readonly settled: Promise<void> = this.firstReady.promise.then(() => wait(AFTER_READY.delayMs, undefined, { ref: false }));
  private wasDegraded = false;
  private quiet = false;

  constructor(options: SupervisorOptions) {
    this.log = options.log.child({ service: 'supervisor' });
    this.policy = { ...SUPERVISION.restart, budget: options.restartBudget };
    for (const declaration of options.declarations) {
      const daemon = new Daemon(declaration, options.log, options.demote);
      daemon.onLogLine((line) => {
        for (const listener of this.lineListeners) listener(daemon.name, line);
      });
      daemon.onUnexpectedExit(({ code, signal }) => {
        const reason = `exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`})`;
        this.log.error({ event: 'daemon_exit', daemon: daemon.name, code, signal }, `${daemon.name} ${reason}`);
        void this.restart(daemon.name, reason);
      });
      this.daemons.set(declaration.name, daemon);
    }
    startWaves(options.declarations); // an undeclared need or a cycle fails here, not at start
    this.checks = [...buildChecks(options.declarations, options.listeners, options.probeHost), ...(options.serviceChecks ?? [])];
  }

  /** Called with every log line of every daemon. */
  onLogLine(listener: (daemon: string, line: DaemonLogLine) => void): void {
    this.lineListeners.push(listener);
  }

  statuses(): Record<string, DaemonStatus> {
    return Object.fromEntries([...this.daemons].map(([name, daemon]) => [name, daemon.status()]));
  }

  readiness(): Readiness {
    const optional = new Set([...this.daemons.values()].filter((d) => d.declaration.optional).map((d) => d.name));
    return readiness(this.statuses(), this.checks, this.results, this.causes, optional);
  }

  health(): Health {
    return { healthy: this.crashLoop === undefined, ...(this.crashLoop ? { error: this.crashLoop } : {}), daemons: this.statuses() };
  }

  /**
   * Each daemon as soon as what it needs is up, independent ones in parallel; resolves once every
   * daemon that is not optional runs. An optional one that fails to start is retried in the background.
   */
  async start(): Promise<void> {
    const launched = new Map<string, Promise<void>>();
    const launch = (daemon: Daemon): Promise<void> => {
      let started = launched.get(daemon.name);
      if (!started) {
        const first = daemon.declaration.waitsForNeeds === false ? [] : daemon.declaration.needs.map((need) => launch(this.daemons.get(need)!));
        started = Promise.all(first).then(() => daemon.start(this.abort.signal));
        launched.set(daemon.name, started);
      }
      return started;
    };
    const all = [...this.daemons.values()];
    for (const daemon of all.filter((d) => d.declaration.optional)) {
      launch(daemon).catch((error: Error) => {
        if (this.abort.signal.aborted) return;
        this.log.error({ event: 'daemon_start_failed', daemon: daemon.name, error: error.message }, `${daemon.name} did not start: ${error.message}`);
        void this.restart(daemon.name, `start failed: ${error.message}`);
      });
    }
    await Promise.all(all.filter((d) => !d.declaration.optional).map(launch));
    this.loop = this.probeLoop();
    // After-start work (queue care, which loads the command runner) waits for the first ready verdict.
    const afterStart = () => {
      for (const daemon of this.daemons.values()) {
        daemon.declaration.afterStart?.(this.log).catch((error: Error) => this.log.warn({ event: 'after_start_failed', daemon: daemon.name, error: error.message }, `${daemon.name}: ${error.message}`));
      }
    };
    const fallback = setTimeout(() => this.firstReady.resolve(), AFTER_READY.fallbackMs).unref();
    void this.firstReady.promise.then(() => clearTimeout(fallback));
    void this.settled.then(() => this.abort.signal.aborted || afterStart());
  }

  /**
   * No more probes (so no restart for a closed port) while the daemons keep running: a relay replica
   * that drains its queue has closed its listeners on purpose. A daemon that exits is still restarted.
   */
  async quiesce(): Promise<void> {
    this.quiet = true;
    this.wake?.();
    await this.loop?.catch(() => undefined);
  }

  private async probeLoop(): Promise<void> {
    while (!this.abort.signal.aborted && !this.quiet) {
      await this.probeOnce();
      // Fast while anything is failing, optional daemons included (so their return is seen at once);
      // an optional service check alone (the shared store away) does not make every port probed 40 times a second.
      const delay = this.wasReady && !this.optionalDaemonFailing() ? SUPERVISION.intervalMs : SUPERVISION.fastIntervalMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async probeOnce(): Promise<void> {
    const results = await Promise.all(this.checks.map(async (check) => [check, await check.run()] as const));
    for (const [check, result] of results) this.results.set(check.name, result);
    const now = Date.now();
    this.causes.clear();
    for (const [check, result] of results) {
      if (check.daemon === undefined) {
        this.recoverService(check, result.ok, now);
        continue;
      }
      const daemon = this.daemons.get(check.daemon)!;
      const blocker = result.ok ? undefined : blockedBy(check.daemon, { needs: (name) => this.daemons.get(name)?.declaration.needs ?? [], state: (name) => this.daemons.get(name)!.state, checks: this.checks, results: this.results });
      if (blocker) this.causes.set(check.name, blocker);
      if (result.ok || daemon.state !== 'running' || blocker) {
        this.failingSince.delete(check.name);
        continue;
      }
      const since = this.failingSince.get(check.name) ?? now;
      this.failingSince.set(check.name, since);
      if (now - since >= SUPERVISION.failAfterMs) {
        this.failingSince.delete(check.name);
        void this.restart(check.daemon, `probe ${check.name} failing for ${Math.round((now - since) / 1000)} s: ${result.error}`);
      }
    }
    const verdict = this.readiness();
    if (verdict.ready !== this.wasReady) {
      this.wasReady = verdict.ready;
      if (verdict.ready) this.log.info({ event: 'ready' }, 'all checks pass: ready');
      if (verdict.ready) this.firstReady.resolve();
      else this.log.warn({ event: 'not_ready', failing: verdict.failing }, `not ready: ${verdict.failing.join('; ')}`);
    }
    const degraded = verdict.degraded.length > 0;
    if (degraded !== this.wasDegraded) {
      this.wasDegraded = degraded;
      if (degraded) this.log.warn({ event: 'degraded', degraded: verdict.degraded }, `serving without: ${verdict.degraded.join('; ')}`);
      else this.log.info({ event: 'complete' }, 'every optional daemon is up');
    }
  }

  private optionalDaemonFailing(): boolean {
    const failing = (name: string) => this.checks.some((check) => check.daemon === name && this.results.get(check.name)?.ok === false);
    return [...this.daemons.values()].some((d) => d.declaration.optional && (d.state !== 'running' || failing(d.name)));
  }

  /** A service check failing for failAfterMs gets its `recover` (once per failing stretch). */
  private recoverService(check: Check, ok: boolean, now: number): void {
    if (ok) {
      this.failingSince.delete(check.name);
      return;
    }
    const since = this.failingSince.get(check.name) ?? now;
    this.failingSince.set(check.name, since);
    if (now - since < SUPERVISION.failAfterMs || !check.recover) return;
    this.failingSince.delete(check.name);
    this.log.warn({ event: 'service_recover', check: check.name }, `check ${check.name} failing for ${Math.round((now - since) / 1000)} s: recovering it`);
    check.recover().catch((error: Error) => this.log.error({ event: 'service_recover_failed', check: check.name, error: error.message }, `recovering ${check.name} failed: ${error.message}`));
  }

  async restart(name: string, reason: string): Promise<void> {
    if (this.restarting.has(name)) return;
    this.restarting.add(name);
    try {
      const daemon = this.daemons.get(name)!;
      for (let attempt = 0; !this.abort.signal.aborted && !this.crashLoop; attempt++) {
        if (await this.restartOnce(daemon, attempt === 0 ? reason : `restart failed: ${daemon.status().lastError}`)) return;
      }
    } finally {
      this.restarting.delete(name);
    }
  }

  /** One kill-and-start cycle; false when the new start failed too. */
  private async restartOnce(daemon: Daemon, reason: string): Promise<boolean> {
    const { name } = daemon;
    const now = Date.now();
    const decision = decideRestart(this.history.get(name) ?? NO_HISTORY, now, daemon.uptimeMs(now), this.policy);
    this.history.set(name, decision.history);
    daemon.beginRestart(reason);
    // Until probes pass against the new processes, the old results say nothing.
    for (const check of this.checks) if (check.daemon === name) this.results.delete(check.name);
    if (decision.verdict === 'give-up') {
      this.crashLoop = `${name} restarted ${decision.restartsInWindow} times within ${this.policy.windowMs / 60_000} min; giving up (${reason})`;
      daemon.giveUp(this.crashLoop);
      this.log.fatal({ event: 'crash_loop', daemon: name }, this.crashLoop);
      await daemon.killGroups();
      return true;
    }
    const { delayMs } = decision;
    this.log.warn({ event: 'daemon_restart', daemon: name, reason, attempt: decision.history.times.length, delayMs }, `restarting ${name} in ${delayMs} ms: ${reason}`);
    await daemon.killGroups();
    if (delayMs > 0) await wait(delayMs);
    if (this.abort.signal.aborted) return true;
    try {
      await daemon.start(this.abort.signal);
    } catch (error) {
      this.log.error({ event: 'daemon_start_failed', daemon: name, error: (error as Error).message }, `${name} did not start: ${(error as Error).message}`);
      return false;
    } finally {
      this.wake?.();
    }
    this.log.info({ event: 'daemon_restarted', daemon: name, restarts: daemon.status().restarts }, `${name} is running again`);
    for (const dependent of this.daemons.values()) {
      if (!dependent.declaration.needs.includes(name) || dependent.state !== 'running') continue;
      dependent.declaration.onDependencyRestarted?.(this.log).catch((error: Error) => this.log.warn({ event: 'dependency_hook_failed', daemon: dependent.name, error: error.message }, `${dependent.name}: ${error.message}`));
    }
    return true;
  }

  /** Re-read the rendered files in place: every daemon, or the one named. */
  async reload(name?: string): Promise<void> {
    for (const daemon of this.daemons.values()) if (name === undefined || daemon.name === name) await daemon.reload();
  }

  /**
   * Every daemon at once, every process ended. Nothing accepted is lost: Postfix acknowledges a message
   * only once it is on disk, and a delivery to Dovecot cut short stays in the queue.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await Promise.all([...this.daemons.values()].map((daemon) => daemon.stop()));
    await this.loop?.catch(() => undefined);
  }
}

// Keeps Dovecot and Postfix up: starts them in order, probes the SASL socket and every port,
// restarts a daemon that exits or stays unhealthy (exponential backoff, crash-loop budget).
import { setTimeout as wait } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { StatePaths } from '../render/paths.ts';
import { Daemon, type DaemonStatus } from './daemon.ts';
import type { DaemonLogLine } from './daemon-log.ts';
import { Metrics, countFiles } from '../metrics/metrics.ts';
import { AuthBans } from './bans.ts';
import { dovecotSpec, flushPostfixQueue, postfixSpec, reloadPostfix } from './daemons.ts';
import { isProbeLine, probeGreeting, probeSasl, type Greeting, type ProbeResult } from './probes.ts';

export const SUPERVISION = {
  /** Probe cadence while everything is healthy, and while something is not. */
  intervalMs: 2000,
  fastIntervalMs: 100,
  /** A check failing this long while its daemon runs gets the daemon restarted. */
  failAfterMs: 4000,
  /** Restart delays: 0 for the first, then doubling from baseMs up to capMs. */
  backoffBaseMs: 250,
  backoffCapMs: 30_000,
  /** More restarts than RESTART_BUDGET within this window: crash loop, /health turns 503. */
  budgetWindowMs: 5 * 60_000,
} as const;

type DaemonName = 'postfix' | 'dovecot';

interface Check {
  name: string;
  daemon: DaemonName;
  run: () => Promise<ProbeResult>;
}

export class Supervisor {
  readonly daemons: Record<DaemonName, Daemon>;
  readonly checks: Check[];
  readonly results = new Map<string, ProbeResult>();
  readonly bans: AuthBans;
  readonly metrics: Metrics;
  crashLoop: string | undefined;
  private readonly log: Logger;
  private readonly failingSince = new Map<string, number>();
  private readonly restartTimes: Record<DaemonName, number[]> = { postfix: [], dovecot: [] };
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private wasReady = false;
  private readonly restarting = new Set<DaemonName>();

  /** `root` is the logger without a service; each daemon and the supervisor get their own child. */
  private readonly paths: StatePaths;
  private readonly restartBudget: number;

  constructor(config: Config, paths: StatePaths, tls: { certFile: string }, root: Logger) {
    this.paths = paths;
    this.restartBudget = config.restartBudget;
    this.log = root.child({ service: 'supervisor' });
    const log = root;
    const demote = (line: DaemonLogLine) => isProbeLine(line.msg);
    this.daemons = {
      dovecot: new Daemon(dovecotSpec(paths, demote), log),
      postfix: new Daemon(postfixSpec(paths, demote), log),
    };
    const host = config.bindAddress && !['0.0.0.0', '::'].includes(config.bindAddress) ? config.bindAddress : '127.0.0.1';
    const greeting = (name: string, daemon: DaemonName, port: number, protocol: Greeting, tls: boolean): Check[] =>
      port > 0 ? [{ name: `${name}:${port}`, daemon, run: () => probeGreeting(host, port, protocol, tls) }] : [];
    this.checks = [
      { name: 'sasl', daemon: 'dovecot', run: () => probeSasl(paths.authSocket) },
      ...greeting('smtp', 'postfix', config.ports.smtp, 'smtp', false),
      ...greeting('submission', 'postfix', config.ports.submission, 'smtp', false),
      ...greeting('submissions', 'postfix', config.ports.submissions, 'smtp', true),
      ...greeting('imap', 'dovecot', config.ports.imap, 'imap', false),
      ...greeting('imaps', 'dovecot', config.ports.imaps, 'imap', true),
    ];
    this.bans = new AuthBans(config.auth.ban, paths.bannedClients, () => reloadPostfix(paths), this.log);
    this.metrics = new Metrics({
      daemons: () => this.status(),
      probes: () => this.results,
      bansActive: () => this.bans.active.length,
      queueDir: paths.queue,
      certFile: () => tls.certFile,
    });
    for (const daemon of Object.values(this.daemons)) {
      daemon.onLogLine((line) => {
        this.bans.observe(line);
        this.metrics.observe(line);
      });
      daemon.onUnexpectedExit(({ code, signal }) => {
        const reason = `exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`})`;
        this.log.error({ event: 'daemon_exit', daemon: daemon.spec.name, code, signal }, `${daemon.spec.name} ${reason}`);
        void this.restart(daemon.spec.name, reason);
      });
    }
  }

  /** Every daemon running and every check passing (a crash turns this false at once, before a probe). */
  get ready(): boolean {
    return Object.values(this.daemons).every((d) => d.status.state === 'running') && this.checks.every((check) => this.results.get(check.name)?.ok === true);
  }

  get healthy(): boolean {
    return this.crashLoop === undefined;
  }

  status(): Record<DaemonName, DaemonStatus> {
    return { postfix: { ...this.daemons.postfix.status }, dovecot: { ...this.daemons.dovecot.status } };
  }

  /** Dovecot first (Postfix's smtpd needs its auth socket), then Postfix; then the probe loop. */
  async start(): Promise<void> {
    this.bans.init();
    await this.daemons.dovecot.start(this.abort.signal);
    await this.daemons.postfix.start(this.abort.signal);
    this.loop = this.probeLoop();
    void this.flushQueue();
  }

  /** Mail deferred before a restart (e.g. the upstream was down) is retried at start, not hours later. */
  private async flushQueue(): Promise<void> {
    if (this.deferredQueueEmpty()) return;
    try {
      await flushPostfixQueue(this.paths);
      this.log.info({ event: 'queue_flush' }, 'retrying the mail queued before this start');
    } catch (error) {
      this.log.warn({ event: 'queue_flush_failed', error: (error as Error).message }, `could not flush the queue: ${(error as Error).message}`);
    }
  }

  private deferredQueueEmpty(): boolean {
    return countFiles(`${this.paths.queue}/deferred`) === 0;
  }

  private async probeLoop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      await this.probeOnce();
      const delay = this.ready ? SUPERVISION.intervalMs : SUPERVISION.fastIntervalMs;
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
    const now = Date.now();
    for (const [check, result] of results) {
      this.results.set(check.name, result);
      const daemon = this.daemons[check.daemon];
      if (result.ok || daemon.status.state !== 'running') {
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
    if (this.ready !== this.wasReady) {
      this.wasReady = this.ready;
      const failing = results.filter(([, r]) => !r.ok).map(([c, r]) => `${c.name}: ${r.error}`);
      if (this.ready) this.log.info({ event: 'ready' }, 'all checks pass: ready');
      else this.log.warn({ event: 'not_ready', failing }, `not ready: ${failing.join('; ')}`);
    }
  }

  private backoff(recent: number): number {
    return recent <= 1 ? 0 : Math.min(SUPERVISION.backoffCapMs, SUPERVISION.backoffBaseMs * 2 ** (recent - 2));
  }

  async restart(name: DaemonName, reason: string): Promise<void> {
    if (this.restarting.has(name)) return;
    this.restarting.add(name);
    try {
      await this.restartNow(name, reason);
    } finally {
      this.restarting.delete(name);
    }
  }

  private async restartNow(name: DaemonName, reason: string): Promise<void> {
    const daemon = this.daemons[name];
    for (let attempt = 0; !this.abort.signal.aborted && !this.crashLoop; attempt++) {
      if (await this.restartOnce(daemon, attempt === 0 ? reason : `restart failed: ${daemon.status.lastError}`)) return;
    }
  }

  /** One kill-and-start cycle; false when the new start failed too. */
  private async restartOnce(daemon: Daemon, reason: string): Promise<boolean> {
    const name = daemon.spec.name;
    daemon.status.state = 'restarting';
    // Until probes pass against the new processes, the old results say nothing.
    for (const check of this.checks) if (check.daemon === name) this.results.delete(check.name);
    daemon.status.lastError = reason;
    const now = Date.now();
    const recent = this.restartTimes[name].filter((t) => now - t < SUPERVISION.budgetWindowMs);
    recent.push(now);
    this.restartTimes[name] = recent;
    if (recent.length > this.restartBudget) {
      this.crashLoop = `${name} restarted ${recent.length - 1} times within ${SUPERVISION.budgetWindowMs / 60_000} min; giving up (${reason})`;
      daemon.status.state = 'failed';
      this.log.fatal({ event: 'crash_loop', daemon: name }, this.crashLoop);
      await daemon.killGroups();
      return true;
    }
    const delay = this.backoff(recent.length);
    this.log.warn({ event: 'daemon_restart', daemon: name, reason, attempt: recent.length, delayMs: delay }, `restarting ${name} in ${delay} ms: ${reason}`);
    await daemon.killGroups();
    if (delay > 0) await wait(delay);
    if (this.abort.signal.aborted) return true;
    daemon.status.restarts += 1;
    try {
      await daemon.start(this.abort.signal);
    } catch (error) {
      daemon.status.lastError = (error as Error).message;
      this.log.error({ event: 'daemon_start_failed', daemon: name, error: daemon.status.lastError }, `${name} did not start: ${daemon.status.lastError}`);
      return false;
    } finally {
      this.wake?.();
    }
    this.log.info({ event: 'daemon_restarted', daemon: name, restarts: daemon.status.restarts }, `${name} is running again`);
    return true;
  }

  /** Re-read the rendered files in place: `postfix reload` and SIGHUP to Dovecot's master (same pids). */
  async reloadDaemons(): Promise<void> {
    await reloadPostfix(this.paths);
    const dovecot = this.daemons.dovecot.status.pid;
    if (dovecot !== undefined) process.kill(dovecot, 'SIGHUP');
  }

  /** Postfix first (stop accepting mail, keep the queue), then Dovecot; every process ended. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.bans.stop();
    this.wake?.();
    await this.daemons.postfix.stop(5000);
    await this.daemons.dovecot.stop(2000);
    await this.loop?.catch(() => undefined);
  }
}

// The running appliance: one object whose named lifecycle steps the composition root calls in order
// (defend → startDaemons → serve → awaitStarted → afterStart → stopped). What is served (HTTP status,
// the control socket, the admin API) is a Surface added by composing, not another closure in run().
import type { Logger } from 'pino';
import { AbuseDefences } from '../abuse/defences.ts';
import type { Config } from '../config/schema.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import type { DaemonDeclaration } from '../daemons/declaration.ts';
import { EXIT_FAILURE, EXIT_OK } from '../exit.ts';
import { writeDaemonFile } from '../host/files.ts';
import { prepareStateDir, renderState } from '../host/state.ts';
import { enabledListeners, localAddress } from '../listeners.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { isProbeLine } from '../protocol/probes.ts';
import { statePaths, type StatePaths } from '../render/paths.ts';
import { banMapFile } from '../render/postfix.ts';
import type { RenderInput } from '../render/types.ts';
import { drainRelay } from '../replicas/drain.ts';
import { strandedMessages } from '../replicas/stranded.ts';
import { outsideTargets, srsOn } from '../render/postfix/srs.ts';
import { SrsService } from '../srs/service.ts';
import { startOutboundServices } from '../outbound/index.ts';
import type { Readiness } from '../supervision/checks.ts';
import { Supervisor } from '../supervision/supervisor.ts';

/** After a crash loop, /health says 503 this long before the process exits (so a restart policy acts). */
const CRASH_LOOP_EXIT_DELAY_MS = 15_000;
const SHUTDOWN_DEADLINE_MS = 9000;

/** A relay replica first drains its queue and hands the rest to a peer (replicas/drain.ts): that time on top. */
function shutdownDeadlineMs(config: Config): number {
  return SHUTDOWN_DEADLINE_MS + (config.role === 'relay' ? (config.drain.drainSeconds + config.drain.handoffSeconds) * 1000 : 0);
}

/** Something the appliance serves: started after the daemons are launched, stopped with them. */
export interface Surface {
  readonly name: string;
  start(): Promise<void>;
  /** Called once the daemons are up (e.g. the config reloader starts watching). */
  started?(): void;
  /** Called first when the appliance stops, before a relay drains (e.g. no reload mid-drain). */
  stopping?(): void;
  stop(): Promise<unknown>;
}

export class Appliance {
  readonly config: Config;
  readonly root: Logger;
  readonly log: Logger;
  readonly paths: StatePaths;
  readonly startedAt = performance.now();
  defences!: AbuseDefences;
  daemons!: Supervisor;
  rendered!: RenderInput;
  /** Resolves once prom-client is loaded, after the first ready verdict (a scrape before waits for it). */
  counting!: Promise<Metrics>;
  private metrics: Metrics | undefined;
  /** Operator actions made before prom-client was loaded, counted once it is. */
  private readonly earlyActions: string[] = [];
  /** Age of the oldest queued message, for /metrics (set by the operations surface). */
  oldestQueuedSeconds: (() => Promise<number>) | undefined;
  private readonly surfaces: Surface[] = [];
  private srs: SrsService | undefined;
  private outbound: Awaited<ReturnType<typeof startOutboundServices>> | undefined;
  private starting!: Promise<void>;
  private stopping: Promise<number> | undefined;
  private running = false;
  private draining = false;
  private readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;

  constructor(config: Config, root: Logger) {
    this.config = config;
    this.root = root;
    this.log = root.child({ service: 'supervisor' });
    this.paths = statePaths(config.stateDir);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /**
   * Abuse defences: bans restored from the last run and Dovecot's auth policy endpoint go into the
   * rendered files; the sending-limits policy service listens before Postfix starts.
   */
  async defend(): Promise<void> {
    this.defences = await AbuseDefences.create(this.config, this.config.users, this.paths, this.log, {
      putBansInForce: async (addresses) => {
        writeDaemonFile(banMapFile(this.paths, addresses));
        await this.daemons?.reload('postfix');
      },
      rateLimited: (limit) => this.metrics?.rateLimited(limit),
    });
    await this.defences.open();
    this.rendered = await prepareStateDir(this.config, this.log, this.defences.bans.active, this.defences.authPolicyEndpoint);
    await this.defences.reconfigure(this.config, this.rendered.users);
    await this.defences.startPolicyService();
    // SRS lookups (render/postfix/srs.ts) are served wherever Postfix runs, so a reload that adds the
    // first outside forwarding target needs no restart.
    const { config, paths, log } = this;
    this.srs = config.role === 'mailbox' ? undefined : new SrsService({ socketPath: paths.srsSocket, secretPath: config.srsSecretFile ?? paths.srsSecret, hostname: config.hostname, domains: config.domains, log });
    await this.srs?.start();
    if (srsOn(this.rendered)) {
      const targets = outsideTargets(this.rendered);
      log.info({ event: 'srs_on', targets }, `forwarding to ${targets.join(', ')}: mail taken on port 25 leaves with an SRS envelope sender at ${config.hostname}`);
    }
    // Direct delivery's MTA-STS policy socketmap, listening before Postfix asks it.
    this.outbound = await startOutboundServices(config, paths, log);
  }

  /** The daemons. Their log lines reach the defences at once, and the metrics once those are loaded. */
  startDaemons(declarations: DaemonDeclaration[]): void {
    this.daemons = new Supervisor({
      declarations,
      listeners: enabledListeners(this.config.ports),
      probeHost: localAddress(this.config.bindAddress),
      restartBudget: this.config.restartBudget,
      log: this.root,
      demote: (line) => isProbeLine(line.msg),
      serviceChecks: [...this.defences.serviceChecks(), ...(this.srs ? [this.srs.check()] : [])],
    });
    const early: DaemonLogLine[] = [];
    this.daemons.onLogLine((_daemon, line) => {
      this.defences.observe(line);
      if (this.metrics) this.metrics.observe(line);
      else early.push(line);
    });
    process.once('SIGTERM', () => void this.stop('SIGTERM', EXIT_OK).then(this.resolveDone));
    process.once('SIGINT', () => void this.stop('SIGINT', EXIT_OK).then(this.resolveDone));
    this.starting = this.daemons.start();
    this.starting.catch(() => undefined);
    this.counting = (async () => {
      await this.starting;
      await this.daemons.settled;
      const { Metrics } = await import('../metrics/metrics.ts');
      const { configuredSmarthosts } = await import('../metrics/smarthosts.ts');
      const counted = new Metrics({
        readiness: () => this.readiness(),
        bansActive: () => this.defences.bans.active.length,
        suspendedUsers: () => this.defences.suspendedUsers(),
        queueDir: this.paths.queue,
        certFile: () => this.rendered.tls.certFile,
        strandedMessages: () => strandedMessages(this.paths),
        oldestQueuedSeconds: () => this.oldestQueuedSeconds?.() ?? Promise.resolve(0),
        smarthosts: configuredSmarthosts(this.config),
        log: this.log,
      });
      for (const line of early.splice(0)) counted.observe(line);
      for (const action of this.earlyActions.splice(0)) counted.adminAction(action);
      this.metrics = counted;
      return counted;
    })();
    this.counting.catch(() => undefined);
  }

  /** One operator action, in relaybox_admin_actions_total. */
  countAdminAction(action: string): void {
    if (this.metrics) this.metrics.adminAction(action);
    else this.earlyActions.push(action);
  }

  /** While a relay drains, /ready says so: the Services stop sending it clients and peers. */
  readiness(): Readiness {
    const verdict = this.daemons.readiness();
    return this.draining ? { ...verdict, ready: false, failing: ['draining: this relay replica is stopping', ...verdict.failing] } : verdict;
  }

  /** Renders every daemon file again (a reload, or a drain) with the bans in force. */
  async rerender(config: Config, drain?: RenderInput['drain']): Promise<RenderInput> {
    this.rendered = await renderState(config, this.log, this.defences.bans.active, this.defences.authPolicyEndpoint, drain);
    return this.rendered;
  }

  /** Surfaces start in the order given, while the daemons start. */
  async serve(surfaces: Surface[]): Promise<void> {
    for (const surface of surfaces) {
      this.surfaces.push(surface);
      await surface.start();
    }
  }

  /** True once every daemon runs; false (and stopped) when the start failed. */
  async awaitStarted(): Promise<{ ok: true } | { ok: false; code: Promise<number> }> {
    try {
      await this.starting;
    } catch (error) {
      if (this.stopping) return { ok: false, code: this.stopping }; // stopped while starting (SIGTERM)
      this.log.fatal({ event: 'start_failed', error: (error as Error).message }, `could not start: ${(error as Error).message}`);
      return { ok: false, code: this.stop('start failed', EXIT_FAILURE) };
    }
    this.running = true;
    this.log.info({ event: 'started', ms: Math.round(performance.now() - this.startedAt) }, 'daemons started');
    return { ok: true };
  }

  /** Once the daemons are up: stranded mail said, bans expiring, surfaces told, the crash-loop watch. */
  afterStart(): void {
    const stranded = strandedMessages(this.paths);
    if (stranded > 0) this.log.warn({ event: 'queue_stranded_restart', count: stranded }, `${stranded} message(s) left in the queue at the last stop (no peer took them): delivering them now`);
    this.defences.start();
    for (const surface of this.surfaces) surface.started?.();
    const watchCrashLoop = setInterval(() => {
      if (this.daemons.health().healthy) return;
      clearInterval(watchCrashLoop);
      setTimeout(() => void this.stop('crash loop', EXIT_FAILURE).then((code) => process.exit(code)), CRASH_LOOP_EXIT_DELAY_MS);
    }, 1000);
    void this.done.then(() => clearInterval(watchCrashLoop));
  }

  /** The exit code, once stopped by a signal. */
  stopped(): Promise<number> {
    return this.done;
  }

  /** A relay replica asked to stop strands no mail: listeners closed, its queue delivered or handed to a peer. */
  private async drain(): Promise<void> {
    this.draining = true;
    await this.daemons.quiesce();
    const apply = async (mode: NonNullable<RenderInput['drain']>) => {
      await this.rerender(this.rendered.config, mode);
      await this.daemons.reload('postfix');
    };
    try {
      await drainRelay(this.rendered.config, this.paths, { apply, log: this.log });
    } catch (error) {
      this.log.error({ event: 'drain_failed', error: (error as Error).message }, `draining the queue failed (it stays on the volume): ${(error as Error).message}`);
    }
  }

  stop(reason: string, code: number): Promise<number> {
    this.stopping ??= (async () => {
      this.log.info({ event: 'shutdown', reason }, `stopping: ${reason}`);
      const deadline = setTimeout(() => {
        this.log.error({ event: 'shutdown_timeout' }, 'shutdown took too long; exiting');
        process.exit(code);
      }, shutdownDeadlineMs(this.config));
      for (const surface of this.surfaces) surface.stopping?.();
      if (this.config.role === 'relay' && this.running && code === EXIT_OK) await this.drain();
      await Promise.all([this.daemons.stop(), ...this.surfaces.map((surface) => surface.stop())]);
      await this.defences.stop();
      await this.srs?.stop();
      await this.outbound?.stop();
      clearTimeout(deadline);
      this.log.info({ event: 'stopped' }, 'all daemons stopped');
      return code;
    })();
    return this.stopping;
  }
}

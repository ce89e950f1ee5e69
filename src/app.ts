// `relaybox run`, the composition root: validated config → prepared host → rendered files → daemons
// under supervision → HTTP. It wires what the stages do not know of each other: the abuse defences
// and the metrics read the daemons' log lines, the HTTP server reads the supervisor through a view.
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { AbuseDefences } from './abuse/defences.ts';
import type { Config } from './config/schema.ts';
import { declareDaemons } from './daemons/index.ts';
import type { DaemonLogLine } from './daemons/log-line.ts';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK } from './exit.ts';
import { writeDaemonFile } from './host/files.ts';
import { endOrphans } from './host/orphans.ts';
import { portProblems } from './host/ports.ts';
import { allowedTrustedGateways, hostProblems } from './host/preflight.ts';
import { prepareStateDir, renderState } from './host/state.ts';
import { enabledListeners, localAddress } from './listeners.ts';
import type { Metrics } from './metrics/metrics.ts';
import { isProbeLine } from './protocol/probes.ts';
import { statePaths } from './render/paths.ts';
import { banMapFile } from './render/postfix.ts';
import type { RenderInput } from './render/types.ts';
import { drainRelay } from './replicas/drain.ts';
import { strandedMessages } from './replicas/stranded.ts';
import { SrsService } from './srs/service.ts';
import { outsideTargets, srsOn } from './render/postfix/srs.ts';
import { startOutboundServices } from './outbound/index.ts';
import { Supervisor } from './supervision/supervisor.ts';

/** After a crash loop, /health says 503 this long before the process exits (so a restart policy acts). */
const CRASH_LOOP_EXIT_DELAY_MS = 15_000;
const SHUTDOWN_DEADLINE_MS = 9000;

/** A relay replica first drains its queue and hands the rest to a peer (replicas/drain.ts): that time on top. */
function shutdownDeadlineMs(config: Config): number {
  return SHUTDOWN_DEADLINE_MS + (config.role === 'relay' ? (config.drain.drainSeconds + config.drain.handoffSeconds) * 1000 : 0);
}

/** What serves HTTP and reloads: loaded while the daemons start (they run in other processes). */
async function loadServing() {
  const [{ buildHttpServer }, { runSelftest }, { Reloader }] = await Promise.all([import('./http/server.ts'), import('./selftest/selftest.ts'), import('./config/reload.ts')]);
  return { buildHttpServer, runSelftest, Reloader };
}

export async function run(config: Config, root: Logger): Promise<number> {
  const startedAt = performance.now();
  const log = root.child({ service: 'supervisor' });
  const paths = statePaths(config.stateDir);
  const declarations = declareDaemons({ config, paths });

  // The host: nothing left over from an earlier start, every port free.
  if (existsSync(config.stateDir)) await endOrphans(declarations.flatMap((d) => d.orphan ?? []), log);
  const problems = [...hostProblems(config), ...(await portProblems(config.ports, config.bindAddress)).map((message) => ({ event: 'port_in_use', message }))];
  for (const { event, message } of problems) {
    log.fatal({ event }, message);
    process.stderr.write(`relaybox: ${message}\n`);
  }
  if (problems.length > 0) return EXIT_CONFIG;
  for (const gateway of allowedTrustedGateways(config)) {
    log.warn({ event: 'trusted_gateway_allowed', gateway }, `TRUSTED_NETWORKS contains ${gateway}, this container's default gateway, and TRUSTED_NETWORKS_INCLUDE_GATEWAY=yes allows it: if clients arrive through Docker's userland proxy, port 25 relays for everyone without AUTH`);
  }

  // Abuse defences: bans restored from the last run and Dovecot's auth policy endpoint go into the
  // rendered files; the sending-limits policy service listens before Postfix starts.
  let supervisor: Supervisor | undefined;
  let metrics: Metrics | undefined;
  const defences = await AbuseDefences.create(config, config.users, paths, log, {
    putBansInForce: async (addresses) => {
      writeDaemonFile(banMapFile(paths, addresses));
      await supervisor?.reload('postfix');
    },
    rateLimited: (limit) => metrics?.rateLimited(limit),
  });
  const bans = defences.bans;
  await defences.open();
  let rendered = await prepareStateDir(config, log, bans.active, defences.authPolicyEndpoint);
  await defences.reconfigure(config, rendered.users);
  await defences.startPolicyService();
  // SRS lookups (render/postfix/srs.ts) are served wherever Postfix runs, so a reload that adds the
  // first outside forwarding target needs no restart.
  const srs = config.role === 'mailbox' ? undefined : new SrsService({ socketPath: paths.srsSocket, secretPath: config.srsSecretFile ?? paths.srsSecret, hostname: config.hostname, domains: config.domains, log });
  await srs?.start();
  if (srsOn(rendered)) {
    const targets = outsideTargets(rendered);
    log.info({ event: 'srs_on', targets }, `forwarding to ${targets.join(', ')}: mail taken on port 25 leaves with an SRS envelope sender at ${config.hostname}`);
  }
  // Direct delivery's MTA-STS policy socketmap, listening before Postfix asks it.
  const outbound = await startOutboundServices(config, paths, log);

  // The daemons. Their log lines reach the defences at once, and the metrics once those are loaded.
  const daemons = new Supervisor({
    declarations,
    listeners: enabledListeners(config.ports),
    probeHost: localAddress(config.bindAddress),
    restartBudget: config.restartBudget,
    log: root,
    demote: (line) => isProbeLine(line.msg),
    serviceChecks: [...defences.serviceChecks(), ...(srs ? [srs.check()] : [])],
  });
  supervisor = daemons;
  const early: DaemonLogLine[] = [];
  daemons.onLogLine((_daemon, line) => {
    defences.observe(line);
    if (metrics) metrics.observe(line);
    else early.push(line);
  });

  let serving: { http: { close: () => Promise<unknown> }; reloader: { stop: () => void } } | undefined;
  let stopping: Promise<number> | undefined;
  let started = false;
  let draining = false;
  // A relay replica asked to stop strands no mail: listeners closed, its queue delivered or handed to a peer.
  const drain = async () => {
    draining = true;
    await daemons.quiesce();
    const apply = async (mode: NonNullable<RenderInput['drain']>) => {
      rendered = await renderState(rendered.config, log, bans.active, defences.authPolicyEndpoint, mode);
      await daemons.reload('postfix');
    };
    try {
      await drainRelay(rendered.config, paths, { apply, log });
    } catch (error) {
      log.error({ event: 'drain_failed', error: (error as Error).message }, `draining the queue failed (it stays on the volume): ${(error as Error).message}`);
    }
  };
  const stop = (reason: string, code: number) => {
    stopping ??= (async () => {
      log.info({ event: 'shutdown', reason }, `stopping: ${reason}`);
      const deadline = setTimeout(() => {
        log.error({ event: 'shutdown_timeout' }, 'shutdown took too long; exiting');
        process.exit(code);
      }, shutdownDeadlineMs(config));
      serving?.reloader.stop();
      if (config.role === 'relay' && started && code === EXIT_OK) await drain();
      await Promise.all([daemons.stop(), serving?.http.close()]);
      await defences.stop();
      await srs?.stop();
      await outbound?.stop();
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

  const starting = daemons.start();
  starting.catch(() => undefined);

  // Meanwhile: HTTP and reload.
  const loaded = await loadServing();
  // While a relay drains, /ready says so: the Services stop sending it clients and peers.
  const readiness = () => {
    const verdict = daemons.readiness();
    return draining ? { ...verdict, ready: false, failing: ['draining: this relay replica is stopping', ...verdict.failing] } : verdict;
  };
  // prom-client is loaded off the path to /ready, once the first probes pass; a scrape before waits for it.
  const counting = (async () => {
    await starting;
    await daemons.settled;
    const { Metrics } = await import('./metrics/metrics.ts');
    const counted = new Metrics({ readiness, bansActive: () => bans.active.length, suspendedUsers: () => defences.suspendedUsers(), queueDir: paths.queue, certFile: () => rendered.tls.certFile, strandedMessages: () => strandedMessages(paths) });
    for (const line of early.splice(0)) counted.observe(line);
    metrics = counted;
    return counted;
  })();
  counting.catch(() => undefined);
  const http = loaded.buildHttpServer({
    health: () => ({ ...daemons.health(), bansActive: bans.active.length }),
    readiness,
    metrics: async () => {
      const counted = await counting;
      return { contentType: counted.registry.contentType, text: await counted.registry.metrics() };
    },
    selftest: () => ({ token: rendered.config.selftest.token, options: { config: rendered.config, credentials: rendered.config.selftest.credentials } }),
    runSelftest: loaded.runSelftest,
  });
  const reloader = new loaded.Reloader(
    process.env,
    async (next) => {
      rendered = await renderState(next, log, bans.active, defences.authPolicyEndpoint);
      await defences.reconfigure(next, rendered.users);
      await daemons.reload();
    },
    log,
  );
  serving = { http, reloader };

  if (config.ports.http > 0) {
    await http.listen({ port: config.ports.http, host: config.bindAddress ?? '::' });
    log.info({ event: 'http_listening', port: config.ports.http }, `serving /health, /ready and /metrics on port ${config.ports.http}`);
  }
  try {
    await starting;
  } catch (error) {
    if (stopping) return stopping; // stopped while starting (SIGTERM)
    log.fatal({ event: 'start_failed', error: (error as Error).message }, `could not start: ${(error as Error).message}`);
    return stop('start failed', EXIT_FAILURE);
  }
  started = true;
  log.info({ event: 'started', ms: Math.round(performance.now() - startedAt) }, 'daemons started');
  const stranded = strandedMessages(paths);
  if (stranded > 0) log.warn({ event: 'queue_stranded_restart', count: stranded }, `${stranded} message(s) left in the queue at the last stop (no peer took them): delivering them now`);
  defences.start();
  reloader.start();
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));

  const watchCrashLoop = setInterval(() => {
    if (daemons.health().healthy) return;
    clearInterval(watchCrashLoop);
    setTimeout(() => void stop('crash loop', EXIT_FAILURE).then((code) => process.exit(code)), CRASH_LOOP_EXIT_DELAY_MS);
  }, 1000);
  const code = await done;
  clearInterval(watchCrashLoop);
  return code;
}

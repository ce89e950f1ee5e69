// `relaybox run`, the composition root: validated config → prepared host → rendered files → daemons
// under supervision → HTTP. It wires what the stages do not know of each other: bans and metrics
// read the daemons' log lines, the HTTP server reads the supervisor through a narrow view.
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { AbuseDefences } from './abuse/defences.ts';
import { Reloader } from './config/reload.ts';
import type { Config } from './config/schema.ts';
import { declareDaemons } from './daemons/index.ts';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK } from './exit.ts';
import { writeDaemonFile } from './host/files.ts';
import { endOrphans } from './host/orphans.ts';
import { portProblems } from './host/ports.ts';
import { prepareStateDir, renderState } from './host/state.ts';
import { buildHttpServer } from './http/server.ts';
import { enabledListeners, localAddress } from './listeners.ts';
import { Metrics } from './metrics/metrics.ts';
import { isProbeLine } from './protocol/probes.ts';
import { statePaths } from './render/paths.ts';
import { banMapFile } from './render/postfix.ts';
import { runSelftest } from './selftest/selftest.ts';
import { Supervisor } from './supervision/supervisor.ts';

/** After a crash loop, /health says 503 this long before the process exits (so a restart policy acts). */
const CRASH_LOOP_EXIT_DELAY_MS = 15_000;
const SHUTDOWN_DEADLINE_MS = 9000;

export async function run(config: Config, root: Logger): Promise<number> {
  const started = performance.now();
  const log = root.child({ service: 'supervisor' });
  const paths = statePaths(config.stateDir);
  const declarations = declareDaemons({ config, paths });

  // The host: nothing left over from an earlier start, every port free, STATE_DIR rendered.
  if (existsSync(config.stateDir)) await endOrphans(declarations.flatMap((d) => d.orphan ?? []), log);
  const problems = await portProblems(config.ports, config.bindAddress);
  for (const problem of problems) {
    log.fatal({ event: 'port_in_use' }, problem);
    process.stderr.write(`relaybox: ${problem}\n`);
  }
  if (problems.length > 0) return EXIT_CONFIG;

  // Abuse defences: bans restored from the last run and Dovecot's auth policy endpoint go into the
  // rendered files; the sending-limits policy service listens before Postfix starts.
  let supervisor: Supervisor | undefined;
  let metrics: Metrics | undefined;
  const defences = new AbuseDefences(config, config.users, paths, log, {
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

  // The daemons, and what reads their log lines.
  supervisor = new Supervisor({
    declarations,
    listeners: enabledListeners(config.ports),
    probeHost: localAddress(config.bindAddress),
    restartBudget: config.restartBudget,
    log: root,
    demote: (line) => isProbeLine(line.msg),
    serviceChecks: defences.serviceChecks(),
  });
  metrics = new Metrics({ readiness: () => supervisor.readiness(), bansActive: () => bans.active.length, suspendedUsers: () => defences.suspendedUsers(), queueDir: paths.queue, certFile: () => rendered.tls.certFile });
  supervisor.onLogLine((_daemon, line) => {
    defences.observe(line);
    metrics.observe(line);
  });

  const http = buildHttpServer({
    health: () => ({ ...supervisor.health(), bansActive: bans.active.length }),
    readiness: () => supervisor.readiness(),
    metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
    selftest: () => ({ token: rendered.config.selftest.token, options: { config: rendered.config, credentials: rendered.config.selftest.credentials } }),
    runSelftest,
  });
  const reloader = new Reloader(
    process.env,
    async (next) => {
      rendered = await renderState(next, log, bans.active, defences.authPolicyEndpoint);
      await defences.reconfigure(next, rendered.users);
      await supervisor.reload();
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
      await defences.stop();
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
    log.info({ event: 'http_listening', port: config.ports.http }, `serving /health, /ready and /metrics on port ${config.ports.http}`);
  }
  try {
    await supervisor.start();
  } catch (error) {
    log.fatal({ event: 'start_failed', error: (error as Error).message }, `could not start: ${(error as Error).message}`);
    return stop('start failed', EXIT_FAILURE);
  }
  log.info({ event: 'started', ms: Math.round(performance.now() - started) }, 'daemons started');
  defences.start();
  reloader.start();
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));

  const watchCrashLoop = setInterval(() => {
    if (supervisor.health().healthy) return;
    clearInterval(watchCrashLoop);
    setTimeout(() => void stop('crash loop', EXIT_FAILURE).then((code) => process.exit(code)), CRASH_LOOP_EXIT_DELAY_MS);
  }, 1000);
  const code = await done;
  clearInterval(watchCrashLoop);
  return code;
}

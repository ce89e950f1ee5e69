// The unauthenticated HTTP surface (/health, /ready, /metrics, /selftest) and the config reloader
// (SIGHUP, changed secret files). Loaded while the daemons start (they run in other processes).
import type { Appliance, Surface } from './appliance.ts';

export async function statusSurface(app: Appliance): Promise<Surface> {
  const [{ buildHttpServer }, { runSelftest }, { Reloader }] = await Promise.all([import('../http/server.ts'), import('../selftest/selftest.ts'), import('../config/reload.ts')]);
  const { config, log, daemons, defences } = app;
  const http = buildHttpServer({
    health: () => ({ ...daemons.health(), bansActive: defences.bans.active.length }),
    readiness: () => app.readiness(),
    metrics: async () => {
      const counted = await app.counting;
      return { contentType: counted.registry.contentType, text: await counted.registry.metrics() };
    },
    selftest: () => ({ token: app.rendered.config.selftest.token, options: { config: app.rendered.config, credentials: app.rendered.config.selftest.credentials } }),
    runSelftest,
  });
  const reloader = new Reloader(
    process.env,
    async (next) => {
      const rendered = await app.rerender(next);
      await defences.reconfigure(next, rendered.users);
      await daemons.reload();
    },
    log,
  );
  return {
    name: 'status',
    async start() {
      if (config.ports.http <= 0) return;
      await http.listen({ port: config.ports.http, host: config.bindAddress ?? '::' });
      log.info({ event: 'http_listening', port: config.ports.http }, `serving /health, /ready and /metrics on port ${config.ports.http}`);
    },
    started() {
      reloader.start();
      process.on('SIGHUP', () => void reloader.reload('SIGHUP'));
    },
    stopping: () => reloader.stop(),
    stop: () => http.close(),
  };
}

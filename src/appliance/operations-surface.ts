// The operations (src/operations) composed onto the running appliance, and the control socket the
// CLI speaks to. The admin API (admin-surface.ts) serves the same Operations object.
import { hostname } from 'node:os';
import { Operations } from '../operations/operations.ts';
import { queueSummary } from '../operations/queue-read.ts';
import type { Appliance, Surface } from './appliance.ts';

const OLDEST_EVERY_MS = 10_000;

export function operationsFor(app: Appliance): Operations {
  const ops = new Operations({
    config: () => app.rendered.config,
    users: () => app.rendered.users,
    paths: app.paths,
    log: app.root,
    defences: app.defences,
    readiness: () => app.readiness(),
    health: () => app.daemons.health(),
    counted: (action) => app.countAdminAction(action),
    resign: async () => {
      await app.rerender(app.rendered.config);
      await app.daemons.reload('opendkim');
    },
    replica: process.env.HOSTNAME || hostname(),
  });
  app.daemons.onLogLine((_daemon, line) => ops.observe(line));
  // postqueue -j at most every 10 s, however often /metrics is scraped (a large queue costs CPU to list).
  let oldest: { at: number; value: Promise<number> } | undefined;
  app.oldestQueuedSeconds = () => {
    if (!oldest || Date.now() - oldest.at > OLDEST_EVERY_MS) oldest = { at: Date.now(), value: ops.queue.reader.all().then((messages) => queueSummary(messages).oldestSeconds) };
    return oldest.value;
  };
  return ops;
}

export async function controlSurface(app: Appliance, ops: Operations): Promise<Surface> {
  const [{ buildControlServer, controlSocketPath }] = await Promise.all([import('../http/control-socket.ts')]);
  const server = buildControlServer(ops);
  const path = controlSocketPath(app.config.stateDir);
  return {
    name: 'control socket',
    async start() {
      await server.listen(path);
      app.log.info({ event: 'control_socket_listening', path }, `relaybox status|queue|users|bans|dkim talk to this supervisor on ${path}`);
    },
    stop: () => server.close(),
  };
}

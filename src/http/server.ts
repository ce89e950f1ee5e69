// /health (liveness) and /ready (readiness) for Docker and Kubernetes. Bodies carry state, never secrets.
import Fastify from 'fastify';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { ROUTES } from './routes.ts';

export function buildHttpServer(supervisor: Supervisor) {
  const app = Fastify({ logger: false });

  app.get(ROUTES.health, async (_request, reply) => {
    const healthy = supervisor.healthy;
    return reply.code(healthy ? 200 : 503).send({
      status: healthy ? 'ok' : 'failed',
      ...(supervisor.crashLoop ? { error: supervisor.crashLoop } : {}),
      daemons: supervisor.status(),
      bansActive: supervisor.bans.active.length,
    });
  });

  app.get(ROUTES.ready, async (_request, reply) => {
    const ready = supervisor.ready;
    const checks = Object.fromEntries(supervisor.checks.map(({ name }) => [name, supervisor.results.get(name) ?? { ok: false, error: 'not checked yet' }]));
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks, daemons: supervisor.status() });
  });

  app.get(ROUTES.metrics, async (_request, reply) => {
    const { registry } = supervisor.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  return app;
}

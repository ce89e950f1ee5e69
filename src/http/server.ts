// /health (liveness) and /ready (readiness) for Docker and Kubernetes. Bodies carry state, never secrets.
import { timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { Config } from '../config/schema.ts';
import { runSelftest } from '../selftest/selftest.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { ROUTES } from './routes.ts';

export function buildHttpServer(supervisor: Supervisor, config: Config) {
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

  // Disabled (404) unless SELFTEST_TOKEN is set; then only for `Authorization: Bearer <token>`.
  app.get(ROUTES.selftest, async (request, reply) => {
    const token = config.selftest.token;
    if (!token) return reply.code(404).send({ error: 'selftest is disabled: set SELFTEST_TOKEN to enable GET /selftest' });
    const given = Buffer.from(/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(token);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply.code(401).send({ error: 'a valid bearer token is required' });
    const steps = await runSelftest({ config, credentials: config.selftest.credentials });
    const ok = steps.every((step) => step.status !== 'fail');
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'failed', steps });
  });

  return app;
}

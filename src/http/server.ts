// /health (liveness), /ready (readiness), /metrics and /selftest. It sees the running system only
// through StatusView; bodies carry state, never secrets.
import { timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { SelftestOptions, SelftestStep } from '../selftest/selftest.ts';
import type { Health } from '../supervision/supervisor.ts';
import type { Readiness } from '../supervision/checks.ts';
import { ROUTES } from './routes.ts';

export interface StatusView {
  health: () => Health & { bansActive: number };
  readiness: () => Readiness;
  metrics: () => Promise<{ contentType: string; text: string }>;
  /** The current selftest settings (they follow hot reloads); no token = /selftest disabled. */
  selftest: () => { token?: string; options: SelftestOptions };
  runSelftest: (options: SelftestOptions) => Promise<SelftestStep[]>;
}

/**
 * The routes declare no schemas, so fastify's schema compilers (ajv, fast-json-stringify) are never
 * needed; supplying these keeps them unloaded (~35 ms of every start, ~2.5 MiB). A route that adds a
 * schema fails at start, here, rather than going unvalidated.
 */
export const noSchemas = () => () => {
  throw new Error('relaybox HTTP routes carry no schemas (http/server.ts loads no schema compiler)');
};

export function buildHttpServer(view: StatusView) {
  const app = Fastify({ logger: false, schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } } });

  app.get(ROUTES.health, async (_request, reply) => {
    const { healthy, error, daemons, bansActive } = view.health();
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'failed', ...(error ? { error } : {}), daemons, bansActive });
  });

  app.get(ROUTES.ready, async (_request, reply) => {
    const { ready, checks, daemons, failing, degraded } = view.readiness();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', failing, degraded, checks, daemons });
  });

  app.get(ROUTES.metrics, async (_request, reply) => {
    const { contentType, text } = await view.metrics();
    return reply.type(contentType).send(text);
  });

  // Disabled (404) unless SELFTEST_TOKEN is set; then only for `Authorization: Bearer <token>`.
  app.get(ROUTES.selftest, async (request, reply) => {
    const { token, options } = view.selftest();
    if (!token) return reply.code(404).send({ error: 'selftest is disabled: set SELFTEST_TOKEN to enable GET /selftest' });
    const given = Buffer.from(/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(token);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply.code(401).send({ error: 'a valid bearer token is required' });
    const steps = await view.runSelftest(options);
    const ok = steps.every((step) => step.status !== 'fail');
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'failed', steps });
  });

  return app;
}

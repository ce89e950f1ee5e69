// The HTTP server without daemons: fastify's schema compilers stay unloaded, and a route that
// declares a schema is refused at start instead of going unvalidated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { buildHttpServer, type StatusView } from '../../src/http/server.ts';

const view: StatusView = {
  health: () => ({ healthy: true, daemons: {}, bansActive: 0 }) as unknown as ReturnType<StatusView['health']>,
  readiness: () => ({ ready: false, failing: ['postfix: starting'], degraded: [], checks: [], daemons: {} }) as unknown as ReturnType<StatusView['readiness']>,
  metrics: async () => ({ contentType: 'text/plain', text: '' }),
  selftest: () => ({ options: {} as never }),
  runSelftest: async () => [],
};

test('the routes answer JSON without a schema compiler', async () => {
  const app = buildHttpServer(view);
  const health = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(health.statusCode, 200);
  assert.deepEqual(JSON.parse(health.body), { status: 'ok', daemons: {}, bansActive: 0 });
  const ready = await app.inject({ method: 'GET', url: '/ready' });
  assert.equal(ready.statusCode, 503);
  assert.deepEqual(JSON.parse(ready.body).failing, ['postfix: starting']);
  await app.close();
  // fastify is CommonJS: every module it loaded is in the require cache this process shares.
  const loaded = Object.keys(createRequire(import.meta.url).cache);
  assert.ok(loaded.some((path) => /\/node_modules\/fastify\/fastify\.js$/.test(path)), 'fastify itself is in the cache (the check below can see what it loads)');
  // fastify's precompiled error serializer needs only fast-json-stringify/lib/serializer.js, not the compiler.
  const compilers = loaded.filter((path) => /\/node_modules\/(ajv\/|ajv-formats\/|fast-json-stringify\/index\.js|@fastify\/ajv-compiler\/|@fastify\/fast-json-stringify-compiler\/)/.test(path));
  assert.deepEqual(compilers, [], 'a schema compiler was loaded');
});

test('a route with a schema is refused at start (no validator is loaded to honour it)', async () => {
  const app = buildHttpServer(view);
  app.post('/extra', { schema: { body: { type: 'object', required: ['x'] } } }, async () => ({ ok: true }));
  await assert.rejects(async () => app.ready(), /carry no schemas/);
});

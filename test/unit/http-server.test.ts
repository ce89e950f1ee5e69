// The HTTP server without daemons: fastify's schema compilers stay unloaded, and a route that
// declares a schema is refused at start instead of going unvalidated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
});

test('a route with a schema is refused at start (no validator is loaded to honour it)', async () => {
  const app = buildHttpServer(view);
  app.post('/extra', { schema: { body: { type: 'object', required: ['x'] } } }, async () => ({ ok: true }));
  await assert.rejects(async () => app.ready(), /carry no schemas/);
});

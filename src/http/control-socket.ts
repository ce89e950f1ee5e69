// The control socket (STATE_DIR/control.sock, mode 0600, root's): the CLI's way into the running
// supervisor, whose state (bans, counters, the daemons) is authoritative. Who may connect is decided
// by the file's permissions, so the requests carry no credentials; the CLI names its user for the audit.
import { chmodSync, rmSync } from 'node:fs';
import Fastify from 'fastify';
import type { Operations } from '../operations/operations.ts';
import { registerOperationRoutes } from './operations-routes.ts';
import { noSchemas } from './server.ts';

export const controlSocketPath = (stateDir: string) => `${stateDir}/control.sock`;

export function buildControlServer(ops: Operations) {
  const app = Fastify({ logger: false, schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } } });
  registerOperationRoutes(app, ops, (request) => {
    const named = request.headers['x-relaybox-actor'];
    const who = typeof named === 'string' && /^[\w.@-]{1,64}$/.test(named) ? `cli:${named}` : 'cli';
    return { who, via: 'control-socket' };
  });
  return {
    async listen(path: string): Promise<void> {
      rmSync(path, { force: true });
      await app.listen({ path });
      chmodSync(path, 0o600);
    },
    close: () => app.close(),
  };
}

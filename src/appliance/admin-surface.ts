// The admin API and console (ADMIN_TOKEN / ADMIN_USERS) on their own listener, composed onto the
// appliance with the same Operations the control socket serves.
import type { Operations } from '../operations/operations.ts';
import type { Appliance, Surface } from './appliance.ts';

export async function adminSurface(app: Appliance, ops: Operations): Promise<Surface | undefined> {
  const admin = app.config.admin;
  if (!admin) return undefined;
  const [{ buildAdminServer }, { dovecotAuthenticate }] = await Promise.all([import('../http/admin-server.ts'), import('../protocol/dovecot-auth.ts')]);
  const server = buildAdminServer({
    ops,
    access: () => ({ token: app.rendered.config.admin?.token, users: app.rendered.config.admin?.users ?? [] }),
    authenticate: (user, password, address) => dovecotAuthenticate(app.paths.authSocket, user, password, address),
    isBanned: (address) => app.defences.bans.isBanned(address),
    failed: (address) => {
      app.log.warn({ event: 'admin_login_failed', address }, `failed admin login from ${address}`);
      app.defences.bans.failed(address);
    },
  });
  return {
    name: 'admin',
    async start() {
      await server.listen({ port: admin.port, host: admin.bindAddress });
      app.log.info({ event: 'admin_listening', port: admin.port, address: admin.bindAddress }, `admin API and console on http://${admin.bindAddress.includes(':') ? `[${admin.bindAddress}]` : admin.bindAddress}:${admin.port}/`);
    },
    stop: () => server.close(),
  };
}

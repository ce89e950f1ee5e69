// `relaybox run`, the composition root: validated config → prepared host → rendered files → daemons
// under supervision → what is served. The running appliance (appliance/appliance.ts) holds the
// lifecycle steps; this file only says their order and which surfaces are composed onto it.
import type { Logger } from 'pino';
import { existsSync } from 'node:fs';
import { Appliance } from './appliance/appliance.ts';
import { statusSurface } from './appliance/status-surface.ts';
import type { Config } from './config/schema.ts';
import { declareDaemons } from './daemons/index.ts';
import { EXIT_CONFIG } from './exit.ts';
import { endOrphans } from './host/orphans.ts';
import { bindProblem, portProblems } from './host/ports.ts';
import { allowedTrustedGateways, hostProblems } from './host/preflight.ts';
import { statePaths } from './render/paths.ts';

export async function run(config: Config, root: Logger): Promise<number> {
  const log = root.child({ service: 'supervisor' });
  const paths = statePaths(config.stateDir);
  const declarations = declareDaemons({ config, paths });

  // The host: nothing left over from an earlier start, every port free.
  if (existsSync(config.stateDir)) await endOrphans(declarations.flatMap((d) => d.orphan ?? []), log);
  const ports = await portProblems(config.ports, config.bindAddress);
  if (config.admin) ports.push(...(await bindProblem('PORT_ADMIN', config.admin.port, config.admin.bindAddress)));
  const problems = [...hostProblems(config), ...ports.map((message) => ({ event: 'port_in_use', message }))];
  for (const { event, message } of problems) {
    log.fatal({ event }, message);
    process.stderr.write(`relaybox: ${message}\n`);
  }
  if (problems.length > 0) return EXIT_CONFIG;
  for (const gateway of allowedTrustedGateways(config)) {
    log.warn({ event: 'trusted_gateway_allowed', gateway }, `TRUSTED_NETWORKS contains ${gateway}, this container's default gateway, and TRUSTED_NETWORKS_INCLUDE_GATEWAY=yes allows it: if clients arrive through Docker's userland proxy, port 25 relays for everyone without AUTH`);
  }

  const appliance = new Appliance(config, root);
  await appliance.defend();
  appliance.startDaemons(declarations);
  // Meanwhile (the daemons run in other processes): what is served, its modules loaded now.
  const [{ controlSurface, operationsFor }, { adminSurface }] = await Promise.all([import('./appliance/operations-surface.ts'), import('./appliance/admin-surface.ts')]);
  const operations = operationsFor(appliance);
  const admin = await adminSurface(appliance, operations);
  await appliance.serve([await statusSurface(appliance), await controlSurface(appliance, operations), ...(admin ? [admin] : [])]);
  const started = await appliance.awaitStarted();
  if (!started.ok) return started.code;
  appliance.afterStart();
  return appliance.stopped();
}

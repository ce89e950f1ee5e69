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
import { statePaths } from './render/paths.ts';

export async function run(config: Config, root: Logger): Promise<number> {
  const log = root.child({ service: 'supervisor' });
  const paths = statePaths(config.stateDir);
  const declarations = declareDaemons({ config, paths });

  // The host: nothing left over from an earlier start, every port free.
  if (existsSync(config.stateDir)) await endOrphans(declarations.flatMap((d) => d.orphan ?? []), log);
  const problems = await portProblems(config.ports, config.bindAddress);
  if (config.admin) problems.push(...(await bindProblem('PORT_ADMIN', config.admin.port, config.admin.bindAddress)));
  for (const problem of problems) {
    log.fatal({ event: 'port_in_use' }, problem);
    process.stderr.write(`relaybox: ${problem}\n`);
  }
  if (problems.length > 0) return EXIT_CONFIG;

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

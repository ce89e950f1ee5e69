// Outbound services the supervisor serves to Postfix's smtp: the MTA-STS policy socketmap.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { userIds } from '../host/accounts.ts';
import { SocketmapServer } from '../protocol/socketmap.ts';
import type { StatePaths } from '../render/paths.ts';
import { MtaSts } from './mta-sts.ts';

/** Starts what direct delivery's policy maps ask (render/postfix/direct.ts); undefined when nothing is needed. */
export async function startOutboundServices(config: Config, paths: StatePaths, log: Logger): Promise<{ stop: () => Promise<void> } | undefined> {
  if (!config.outbound.mtaSts) return undefined;
  const resolver = config.resolver;
  const servers = resolver ? [resolver.address] : config.dnsServers.map(({ address, port }) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`));
  const mtaSts = new MtaSts({ ...(resolver ? { validating: { address: resolver.address, port: 53 } } : {}), servers, ...(config.outbound.caFile ? { caFile: config.outbound.caFile } : {}), log });
  const server = new SocketmapServer({ socketPath: paths.mtaStsSocket, owner: userIds('postfix'), lookup: (_name, key) => mtaSts.lookup(key), log, name: 'mta-sts' });
  await server.start();
  return server;
}

// STATE_DIR made ready for a start, and its daemon files rendered again on every reload.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { renderAll } from '../render/index.ts';
import { statePaths } from '../render/paths.ts';
import type { AuthPolicyEndpoint, RenderInput } from '../render/types.ts';
import { ensureMailboxUser } from './accounts.ts';
import { copyChrootCaLinks, copyChrootFiles, prepareDirectories } from './directories.ts';
import { createQueueTree } from './queue-tree.ts';
import { writeRendered } from './files.ts';
import { resolveRenderInput } from './render-input.ts';

/**
 * Renders every daemon file from the config; `bannedClients` keeps the bans in force across a
 * reload; `drain` renders a stopping relay replica's Postfix (replicas/drain.ts).
 */
export async function renderState(config: Config, log: Logger, bannedClients: string[], authPolicy?: AuthPolicyEndpoint, drain?: RenderInput['drain']): Promise<RenderInput> {
  const resolved = await resolveRenderInput(config, { create: true, log }, bannedClients, authPolicy);
  const input = drain ? { ...resolved, drain } : resolved;
  writeRendered(renderAll(input));
  return input;
}

export async function prepareStateDir(config: Config, log: Logger, bannedClients: string[] = [], authPolicy?: AuthPolicyEndpoint): Promise<RenderInput> {
  const paths = statePaths(config.stateDir);
  prepareDirectories(paths, await ensureMailboxUser(), config);
  // Before rendering: a resolv.conf rendered from DNS_SERVERS replaces the host's copy.
  copyChrootFiles(paths);
  const caLinks = copyChrootCaLinks(paths);
  const input = await renderState(config, log, bannedClients, authPolicy);
  createQueueTree(paths);
  await caLinks;
  return input;
}

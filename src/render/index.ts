import { renderDovecot } from './dovecot.ts';
import { renderOpendkim } from './opendkim.ts';
import { renderPostfix } from './postfix.ts';
import { renderRspamd } from './rspamd.ts';
import { statePaths } from './paths.ts';
import type { RenderInput, RenderedFile } from './types.ts';
import { renderChrootResolver } from './resolver.ts';
import { renderUnbound } from './unbound.ts';

/** Every file relaybox writes for the daemons, as a pure function of its input. */
export function renderAll(input: RenderInput): RenderedFile[] {
  const paths = statePaths(input.config.stateDir);
  return [...renderPostfix(input, paths), ...renderDovecot(input, paths), ...renderOpendkim(input, paths), ...renderRspamd(input, paths), ...renderChrootResolver(input, paths), ...renderUnbound(input, paths)];
}

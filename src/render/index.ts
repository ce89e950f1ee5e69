import { renderDovecot } from './dovecot.ts';
import { renderPostfix } from './postfix.ts';
import { statePaths } from './paths.ts';
import type { RenderInput, RenderedFile } from './types.ts';

/** Every file relaybox writes for the daemons, as a pure function of its input. */
export function renderAll(input: RenderInput): RenderedFile[] {
  const paths = statePaths(input.config.stateDir);
  return [...renderPostfix(input, paths), ...renderDovecot(input, paths)];
}

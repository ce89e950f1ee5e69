// A DKIM rotation's state, kept in STATE_DIR/dkim/rotation.json (it survives restarts): per domain,
// the selector that signs, a new one generated but not yet seen published (never signs), and the old
// ones whose records stay listed for a grace period after the switch. Keys from DKIM_KEY_DIR are
// never rotated here; with no entry, a domain signs with its configured selectors.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { StatePaths } from '../render/paths.ts';
import { writeDaemonFile } from './files.ts';

export interface DomainRotation {
  /** The one selector that signs once a rotation switched. */
  signing: string[];
  pending?: { selector: string; createdAt: number };
  retiring?: { selectors: string[]; until: number };
}

export type RotationState = Record<string, DomainRotation>;

export const rotationFile = (paths: StatePaths) => `${paths.dkimKeys}/rotation.json`;

export function readRotation(paths: StatePaths): RotationState {
  const file = rotationFile(paths);
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RotationState;
  } catch (error) {
    throw new Error(`${file} cannot be read as a DKIM rotation state (${(error as Error).message}); fix or remove it`);
  }
}

export function writeRotation(paths: StatePaths, state: RotationState): void {
  writeDaemonFile({ path: rotationFile(paths), content: `${JSON.stringify(state, null, 2)}\n`, mode: 0o600 });
}

export function removeKeyFile(path: string): void {
  rmSync(path, { force: true });
}

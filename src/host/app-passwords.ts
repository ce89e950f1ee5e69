// The app passwords on disk: STATE_DIR/app-passwords.json (root, 0600: names, scopes, dates and
// hashes, never a secret) and the passwd-files Dovecot reads, rewritten at every change. Dovecot
// re-reads a passwd-file when its mtime or size changes, so each rewrite gets an mtime later than
// the last one (still back-dated, see files.ts): a revocation holds from the next login, no restart.
import { readFileSync, statSync, utimesSync } from 'node:fs';
import { renderAppPasswordFiles, type AppPassword } from '../render/app-passwords.ts';
import type { StatePaths } from '../render/paths.ts';
import { writeDaemonFile } from './files.ts';

export function readAppPasswords(paths: Pick<StatePaths, 'appPasswordStore'>): AppPassword[] {
  let text: string;
  try {
    text = readFileSync(paths.appPasswordStore, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parsed = JSON.parse(text) as { passwords?: AppPassword[] };
  return Array.isArray(parsed.passwords) ? parsed.passwords : [];
}

export function saveAppPasswords(paths: Pick<StatePaths, 'appPasswordStore'>, passwords: AppPassword[]): void {
  writeDaemonFile({ path: paths.appPasswordStore, content: `${JSON.stringify({ passwords }, null, 2)}\n`, mode: 0o600 });
}

/** Rewrites the Dovecot files whose content changed, each with an mtime past its previous one. */
export function publishAppPasswords(paths: Pick<StatePaths, 'appPasswordDir'>, passwords: AppPassword[], appPasswordsOnly: string[]): void {
  for (const file of renderAppPasswordFiles(paths.appPasswordDir, passwords, appPasswordsOnly)) {
    let previous: { content: string; mtimeMs: number } | undefined;
    try {
      previous = { content: readFileSync(file.path, 'utf8'), mtimeMs: statSync(file.path).mtimeMs };
    } catch {
      previous = undefined;
    }
    if (previous?.content === file.content) continue;
    writeDaemonFile(file);
    if (previous) {
      const seconds = Math.max(statSync(file.path).mtimeMs, previous.mtimeMs + 1000) / 1000;
      utimesSync(file.path, seconds, Math.floor(seconds));
    }
  }
}

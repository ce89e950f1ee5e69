// The one writer for every file a daemon reads: atomic (rename), with its mode and group, and
// back-dated. Postfix re-reads a texthash: table (and waits on main.cf) until its modification time
// is a few seconds old, so a file written "now" stalls every new smtpd for up to 2 s.
import { chmodSync, chownSync, mkdirSync, readdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { RenderedFile } from '../render/types.ts';
import { groupId, userIds } from './accounts.ts';

const BACKDATE_SECONDS = 60;

export function writeDaemonFile(file: RenderedFile, target = file.path): string {
  const past = new Date(Date.now() - BACKDATE_SECONDS * 1000);
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.tmp-${process.pid}`;
  writeFileSync(temporary, file.content, { mode: file.mode });
  chmodSync(temporary, file.mode);
  const gid = file.group === undefined ? undefined : groupId(file.group);
  const owner = file.owner === undefined ? undefined : userIds(file.owner);
  if ((gid !== undefined || owner) && process.getuid?.() === 0) chownSync(temporary, owner?.uid ?? 0, gid ?? owner?.gid ?? 0);
  utimesSync(temporary, past, past);
  renameSync(temporary, target);
  return target;
}

/** Writes every rendered file; `rebase` moves them from STATE_DIR into another directory (check-config --render). */
export function writeRendered(files: RenderedFile[], options: { rebase?: { from: string; to: string } } = {}): string[] {
  const { rebase } = options;
  return files.map((file) => writeDaemonFile(file, rebase ? join(rebase.to, relative(rebase.from, file.path)) : file.path));
}

/** Files below a directory, counted recursively (Postfix hashes deferred/ into subdirectories). */
export function countFiles(dir: string): number {
  try {
    return readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => sum + (entry.isDirectory() ? countFiles(`${dir}/${entry.name}`) : 1), 0);
  } catch {
    return 0;
  }
}

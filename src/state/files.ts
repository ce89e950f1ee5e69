// Writes rendered files: atomically, with their mode and group, back-dated so that Postfix does not
// wait for main.cf to "settle" (it sleeps when main.cf changed within the last seconds).
import { chmodSync, chownSync, mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { RenderedFile } from '../render/types.ts';
import { groupId } from './accounts.ts';

const BACKDATE_SECONDS = 60;

export function writeRendered(files: RenderedFile[], options: { rebase?: { from: string; to: string } } = {}): string[] {
  const past = new Date(Date.now() - BACKDATE_SECONDS * 1000);
  return files.map((file) => {
    const target = options.rebase ? join(options.rebase.to, relative(options.rebase.from, file.path)) : file.path;
    mkdirSync(dirname(target), { recursive: true });
    const temporary = `${target}.tmp-${process.pid}`;
    writeFileSync(temporary, file.content, { mode: file.mode });
    chmodSync(temporary, file.mode);
    const gid = file.group === undefined ? undefined : groupId(file.group);
    if (gid !== undefined && process.getuid?.() === 0) chownSync(temporary, 0, gid);
    utimesSync(temporary, past, past);
    renameSync(temporary, target);
    return target;
  });
}

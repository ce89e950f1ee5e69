// Postfix's queue tree, made directly: what `postfix check` makes (Debian's postfix-files and
// post-install create-missing) without the ~120 processes it forks (~0.3–0.4 s of every start).
// The hashed subdirectories of defer/ and deferred/ are made by Postfix on demand.
import type { StatePaths } from '../render/paths.ts';
import { groupId, userIds } from './accounts.ts';
import { ensureDir } from './directories.ts';

const QUEUE_DIRS: ReadonlyArray<readonly [name: string, owner: 'postfix' | 'root', group: 'root' | 'postdrop', mode: number]> = [
  ['active', 'postfix', 'root', 0o700],
  ['bounce', 'postfix', 'root', 0o700],
  ['corrupt', 'postfix', 'root', 0o700],
  ['defer', 'postfix', 'root', 0o700],
  ['deferred', 'postfix', 'root', 0o700],
  ['flush', 'postfix', 'root', 0o700],
  ['hold', 'postfix', 'root', 0o700],
  ['incoming', 'postfix', 'root', 0o700],
  // Dovecot's auth and LMTP sockets live here too.
  ['private', 'postfix', 'root', 0o700],
  ['maildrop', 'postfix', 'postdrop', 0o730],
  ['public', 'postfix', 'postdrop', 0o710],
  ['pid', 'root', 'root', 0o755],
  ['saved', 'postfix', 'root', 0o700],
  ['trace', 'postfix', 'root', 0o700],
];

export function createQueueTree(paths: StatePaths): void {
  const postfix = userIds('postfix');
  const postdrop = groupId('postdrop');
  if (!postfix || postdrop === undefined) throw new Error('the postfix user or the postdrop group is missing: is Postfix installed?');
  for (const [name, owner, group, mode] of QUEUE_DIRS) {
    ensureDir(`${paths.queue}/${name}`, mode, { uid: owner === 'postfix' ? postfix.uid : 0, gid: group === 'postdrop' ? postdrop : 0 });
  }
}

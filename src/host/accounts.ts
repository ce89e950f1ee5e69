// System accounts the daemons run as, read from /etc/passwd and /etc/group.
import { readFileSync } from 'node:fs';
import { command } from './command.ts';

export const MAILBOX_USER = 'vmail';

const rows = (file: string) => readFileSync(file, 'utf8').split('\n').map((line) => line.split(':'));

function lookup(file: string, name: string): number[] | undefined {
  return rows(file).find((fields) => fields[0] === name)?.slice(2, 4).map(Number);
}

export function userIds(name: string): { uid: number; gid: number } | undefined {
  const ids = lookup('/etc/passwd', name);
  return ids && ids.length === 2 ? { uid: ids[0]!, gid: ids[1]! } : undefined;
}

export function groupId(name: string): number | undefined {
  return lookup('/etc/group', name)?.[0];
}

/** A user's uid and every group it is in (primary and supplementary); undefined when it does not exist. */
export function userGroups(name: string): { uid: number; gids: Set<number> } | undefined {
  const ids = userIds(name);
  if (!ids) return undefined;
  const supplementary = rows('/etc/group').filter((fields) => (fields[3] ?? '').split(',').includes(name)).map((fields) => Number(fields[2]));
  return { uid: ids.uid, gids: new Set([ids.gid, ...supplementary]) };
}

/** The unprivileged owner of the mailboxes; created on a host that lacks it (the image has it). */
export async function ensureMailboxUser(): Promise<{ uid: number; gid: number }> {
  const existing = userIds(MAILBOX_USER);
  if (existing) return existing;
  await command('useradd', ['--system', '--user-group', '--home-dir', '/nonexistent', '--no-create-home', '--shell', '/usr/sbin/nologin', MAILBOX_USER]);
  const created = userIds(MAILBOX_USER);
  if (!created) throw new Error(`could not create the system user ${MAILBOX_USER}`);
  return created;
}

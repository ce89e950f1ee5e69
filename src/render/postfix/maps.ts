// The lookup tables: who may send as which address, aliases, mailboxes, banned clients.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, table } from './format.ts';

/** Who may use which sender address: each user their own, plus the aliases that point to them. */
function senderLogins({ users, config }: RenderInput): Array<[string, string]> {
  const known = new Set(users.map((u) => u.address));
  const aliasRows = config.aliases
    .filter((a) => !a.alias.startsWith('@'))
    .map((a): [string, string[]] => [a.alias, a.targets.filter((t) => known.has(t))])
    .filter(([, logins]) => logins.length > 0)
    .map(([alias, logins]): [string, string] => [alias, logins.join(',')]);
  return [...users.map((u): [string, string] => [u.address, u.address]), ...aliasRows];
}

/** Aliases; with a catch-all, local users map to themselves first so the catch-all cannot swallow them. */
function aliasRows({ users, config }: RenderInput): Array<[string, string]> {
  const local = new Set(config.domains);
  const hasCatchAll = config.aliases.some((a) => a.alias.startsWith('@'));
  const selves = hasCatchAll ? users.filter((u) => local.has(u.address.split('@')[1] ?? '')).map((u): [string, string] => [u.address, u.address]) : [];
  return [...selves, ...config.aliases.map((a): [string, string] => [a.alias, a.targets.join(',')])];
}

const BANNED_TEXT = 'REJECT too many failed authentications from this address; try again later';

/** The access map of banned client addresses (AUTH_BAN_*), refused at connect on every SMTP port. */
export function banMapFile(paths: StatePaths, addresses: string[]): RenderedFile {
  return { path: paths.bannedClients, content: `${HEADER}${addresses.map((address) => `${address} ${BANNED_TEXT}\n`).join('')}`, mode: 0o644 };
}

export function mapFiles(input: RenderInput, paths: StatePaths): RenderedFile[] {
  const local = new Set(input.config.domains);
  return [
    { path: paths.senderLoginMap, content: table(senderLogins(input)), mode: 0o644 },
    { path: paths.aliasMap, content: table(aliasRows(input)), mode: 0o644 },
    { path: paths.mailboxMap, content: table(input.users.filter((u) => local.has(u.address.split('@')[1] ?? '')).map((u) => [u.address, 'OK'])), mode: 0o644 },
    banMapFile(paths, input.bannedClients),
  ];
}

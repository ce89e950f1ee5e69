// The lookup tables: who may send as which address, aliases, mailboxes, banned clients.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, table, type Setting } from './format.ts';

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

/** Where the postmaster's mail goes: POSTMASTER_ADDRESS, or the first user (the generated account on a first run). */
export function postmasterAddress({ users, config }: RenderInput): string | undefined {
  return config.postmaster ?? users[0]?.address;
}

/**
 * postmaster@ every local domain (RFC 5321) and postmaster@MAIL_HOSTNAME (where a bare `postmaster`
 * and Postfix's own notices go) lead to the postmaster, unless that address is a user or alias itself.
 */
function postmasterRows(input: RenderInput): Array<[string, string]> {
  const target = postmasterAddress(input);
  if (!target) return [];
  const taken = new Set([...input.users.map((u) => u.address), ...input.config.aliases.map((a) => a.alias), target]);
  return [...new Set([...input.config.domains, input.config.hostname])].map((domain) => `postmaster@${domain}`).filter((address) => !taken.has(address)).map((address) => [address, target]);
}

/** Postfix's notices to the postmaster (resource and software problems, undeliverable bounces). */
export function postmasterSettings(input: RenderInput): Setting[] {
  const target = postmasterAddress(input);
  if (!target) return [];
  return [
    ['notify_classes', 'resource, software, 2bounce'],
    ...['bounce', '2bounce', 'delay', 'error'].map((kind): Setting => [`${kind}_notice_recipient`, target]),
  ];
}

/** Aliases; with a catch-all, local users map to themselves first so the catch-all cannot swallow them. */
function aliasRows(input: RenderInput): Array<[string, string]> {
  const { users, config } = input;
  const local = new Set(config.domains);
  const hasCatchAll = config.aliases.some((a) => a.alias.startsWith('@'));
  const selves = hasCatchAll ? users.filter((u) => local.has(u.address.split('@')[1] ?? '')).map((u): [string, string] => [u.address, u.address]) : [];
  return [...selves, ...config.aliases.map((a): [string, string] => [a.alias, a.targets.join(',')]), ...postmasterRows(input)];
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

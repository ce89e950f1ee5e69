// The lookup tables: who may send as which address, aliases, mailboxes, banned clients.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, table, type Setting } from './format.ts';
import { postmasterAddress, roleAddresses, sendAsTable } from './senders.ts';

/** Where the postmaster's mail goes (it lives in senders.ts; imported from here too). */
export { postmasterAddress } from './senders.ts';

/** The role addresses lead to the postmaster (postfix/senders.ts). */
function postmasterRows(input: RenderInput): Array<[string, string]> {
  const target = postmasterAddress(input);
  return target ? roleAddresses(input).map((address) => [address, target]) : [];
}

/**
 * MAIL_HOSTNAME takes mail for its role address (postmaster@) without being a mailbox domain; its
 * other addresses are unknown (550). Postfix's notices to the postmaster (resource and software
 * problems, undeliverable bounces) hold other users' mail: they go to POSTMASTER_ADDRESS only when
 * it is set; by default (the first user) undeliverable bounces are discarded, as Postfix logs.
 */
export function postmasterSettings(input: RenderInput): Setting[] {
  const { config } = input;
  const hostRole = !config.domains.includes(config.hostname) && roleAddresses(input).includes(`postmaster@${config.hostname}`);
  const explicit = config.postmaster;
  return [
    ...(hostRole ? ([['virtual_alias_domains', config.hostname]] as Setting[]) : []),
    ['notify_classes', explicit ? 'resource, software, 2bounce' : ''],
    ...(explicit ? ['bounce', '2bounce', 'delay', 'error'].map((kind): Setting => [`${kind}_notice_recipient`, explicit]) : []),
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
    { path: paths.senderLoginMap, content: table(sendAsTable(input).map(([address, logins]) => [address, logins.join(',')])), mode: 0o644 },
    { path: paths.aliasMap, content: table(aliasRows(input)), mode: 0o644 },
    { path: paths.mailboxMap, content: table(input.users.filter((u) => local.has(u.address.split('@')[1] ?? '')).map((u) => [u.address, 'OK'])), mode: 0o644 },
    banMapFile(paths, input.bannedClients),
  ];
}

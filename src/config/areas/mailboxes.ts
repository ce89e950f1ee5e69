// The accounts, aliases and quota of the local mailboxes.
import { ALIASES_DESCRIPTION, parseAliases, readText, take, text, usersFile, usersList } from '../fields.ts';
import { parseQuota } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as identity } from './identity.ts';

export const variables = {
  MAIL_USERS: usersList,
  MAIL_USERS_FILE: usersFile,
  MAIL_ALIASES: text({ group: 'Mailboxes', description: ALIASES_DESCRIPTION, list: true }).transform(parseAliases),
  MAIL_ALIASES_FILE: text({ group: 'Mailboxes', description: 'Path of a file in the MAIL_ALIASES format; lines starting with # are comments. May be combined with MAIL_ALIASES; an alias in both is an error.' }).transform((path, ctx) =>
    parseAliases(path === '' ? '' : (readText(path, ctx) ?? ''), ctx),
  ),
  APP_PASSWORDS_ONLY: text({
    group: 'Mailboxes',
    description:
      'Accounts (comma or space separated addresses, or `*` for every account) whose own password is refused for SMTP AUTH: only their app passwords (`relaybox users app-password add`) relay. The own password still opens IMAP. Empty = own password and app passwords both relay.',
    list: true,
  }).transform((raw) => raw.split(/[\s,]+/).map((entry) => entry.trim().toLowerCase()).filter(Boolean)),
  MAILBOX_QUOTA: text({ group: 'Mailboxes', description: 'Storage quota per mailbox, e.g. `2G` or `500M`, enforced by Dovecot; mail to a full mailbox is refused at RCPT with 552 5.2.2. Empty = no quota.' }).transform((raw, ctx) =>
    raw.trim() === '' ? undefined : take(parseQuota(raw), ctx, raw),
  ),
};

type Env = Values<typeof variables & typeof identity>;

export function check(env: Env, issue: Issue): void {
  const seen = new Set<string>();
  for (const [variable, list] of [['MAIL_USERS', env.MAIL_USERS], ['MAIL_USERS_FILE', env.MAIL_USERS_FILE]] as const) {
    for (const user of list) {
      if (seen.has(user.address)) issue(variable, `${user.address} is defined more than once; each address once across MAIL_USERS and MAIL_USERS_FILE`);
      seen.add(user.address);
    }
  }
  const only = env.APP_PASSWORDS_ONLY;
  if (only.includes('*') && only.length > 1) issue('APP_PASSWORDS_ONLY', '`*` already means every account; give `*` alone or a list of addresses');
  for (const address of only.filter((entry) => entry !== '*')) {
    if (!seen.has(address)) issue('APP_PASSWORDS_ONLY', `${address} is not a user in MAIL_USERS or MAIL_USERS_FILE`, address);
  }
  const aliasSeen = new Set<string>();
  for (const [variable, list] of [['MAIL_ALIASES', env.MAIL_ALIASES], ['MAIL_ALIASES_FILE', env.MAIL_ALIASES_FILE]] as const) {
    for (const entry of list) {
      if (!env.MAIL_DOMAINS.includes(entry.domain)) issue(variable, `${entry.alias}: ${entry.domain} is not in MAIL_DOMAINS; aliases are for the local domains`);
      if (seen.has(entry.alias)) issue(variable, `${entry.alias} is also a user in MAIL_USERS; an address is either a user or an alias`);
      if (aliasSeen.has(entry.alias)) issue(variable, `${entry.alias} is defined more than once across MAIL_ALIASES and MAIL_ALIASES_FILE`);
      aliasSeen.add(entry.alias);
    }
  }
}

export function toConfig(env: Env) {
  return {
    users: [...env.MAIL_USERS, ...env.MAIL_USERS_FILE],
    aliases: [...env.MAIL_ALIASES, ...env.MAIL_ALIASES_FILE],
    mailboxQuota: env.MAILBOX_QUOTA,
    /** Accounts whose own password is refused for SMTP AUTH (`*` = all): only app passwords relay. */
    appPasswordsOnly: env.APP_PASSWORDS_ONLY,
  };
}

// Who may send as which address: one table for the envelope (smtpd_sender_login_maps) and the header
// From: (the supervisor's milter, abuse/header-from.ts), so the two can never disagree.
import type { RenderInput } from '../types.ts';

type Senders = Pick<RenderInput, 'users' | 'config'>;

/** Where the postmaster's mail goes: POSTMASTER_ADDRESS, or the first user (the generated account on a first run). */
export function postmasterAddress({ users, config }: Senders): string | undefined {
  return config.postmaster ?? users[0]?.address;
}

/**
 * The role addresses that lead to the postmaster, unless one is a user or alias itself:
 * postmaster@ every local domain (RFC 5321) and MAIL_HOSTNAME (where a bare `postmaster` and
 * Postfix's own notices go), abuse@ every local domain (RFC 2142).
 */
export function roleAddresses(input: Senders): string[] {
  const target = postmasterAddress(input);
  if (!target) return [];
  const { users, config } = input;
  const taken = new Set([...users.map((u) => u.address), ...config.aliases.map((a) => a.alias), target]);
  const roles = [...config.domains, config.hostname].map((domain) => `postmaster@${domain}`);
  const abuse = config.domains.map((domain) => `abuse@${domain}`);
  return [...new Set([...roles, ...abuse])].filter((address) => !taken.has(address));
}

/** The users an address leads to (itself, or the users among an alias's targets); none when it leads outside. */
function loginsBehind({ users, config }: Senders, address: string): string[] {
  const known = new Set(users.map((u) => u.address));
  if (known.has(address)) return [address];
  return config.aliases.find((a) => a.alias === address)?.targets.filter((t) => known.has(t)) ?? [];
}

/**
 * Address → the logins that may send as it: each user their own address, the aliases that lead to
 * them (a catch-all is no sender address), and the role addresses the postmaster's logins.
 */
export function sendAsTable(input: Senders): Array<[string, string[]]> {
  const { users, config } = input;
  const known = new Set(users.map((u) => u.address));
  const aliasRows = config.aliases
    .filter((a) => !a.alias.startsWith('@'))
    .map((a): [string, string[]] => [a.alias, a.targets.filter((t) => known.has(t))]);
  const target = postmasterAddress(input);
  const postmasters = target ? loginsBehind(input, target) : [];
  const roleRows = roleAddresses(input).map((address): [string, string[]] => [address, postmasters]);
  return [...users.map((u): [string, string[]] => [u.address, [u.address]]), ...aliasRows, ...roleRows].filter(([, logins]) => logins.length > 0);
}

// What one authenticated user may send (counted per user, not per client address) and where the
// postmaster's mail goes.
import { z } from 'zod';
import { envDocs, integer, take, text } from '../fields.ts';
import { parseSendLimit } from '../outbound-values.ts';
import { parseAddress, splitList } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as identity } from './identity.ts';
import type { variables as mailboxes } from './mailboxes.ts';

export const variables = {
  SEND_LIMIT_MESSAGES: integer({ group: 'Sending', default: '100', description: 'Messages one authenticated user may send per hour (sliding window, on 587 and 465); the next one gets 451 4.7.1 at DATA. 0 = no limit.' }, 0, 1_000_000, 'messages per hour'),
  SEND_LIMIT_RECIPIENTS: integer({ group: 'Sending', default: '1000', description: 'Recipients one authenticated user may send to per day (sliding window); a message that would pass it gets 451 4.7.1 at DATA. 0 = no limit.' }, 0, 10_000_000, 'recipients per day'),
  SEND_LIMITS: text({ group: 'Sending', description: 'Per-user overrides: entries `user@domain:N/h:M/d` separated by spaces or newlines (either part may be left out; 0 = no limit), e.g. `newsletter@example.com:1000/h:20000/d`. Each must be a user in MAIL_USERS or MAIL_USERS_FILE.', list: true }).transform((raw, ctx) =>
    splitList(raw).map((entry) => take(parseSendLimit(entry), ctx, entry)),
  ),
  SEND_SUSPEND_THRESHOLD: integer({ group: 'Sending', default: '50', description: "Messages refused by a user's sending limits within an hour after which the account counts as compromised: its mail still queued is put on hold (`postsuper -h`), it may send nothing more (550 5.7.1), and a `user_suspended` event is logged. Lifted when the user's password hash changes. 0 = never suspend." }, 0, 1_000_000, 'refused messages per hour'),
  POSTMASTER_ADDRESS: text({ group: 'Sending', description: 'Where mail to postmaster@ and abuse@ of every local domain and postmaster@MAIL_HOSTNAME goes (a local user or alias, or an outside address); its users may send as those addresses. Set explicitly, it also gets the notices Postfix sends the postmaster (undeliverable bounces hold other users\' mail). Empty = the first user in MAIL_USERS (or the generated account), without those notices (discarded and logged).' }).transform((raw, ctx) =>
    raw.trim() === '' ? undefined : take(parseAddress(raw.trim()), ctx, raw),
  ),
  SUBMITTER_PRIVACY: z
    .enum(['on', 'off'], { error: 'on or off' })
    .default('on')
    .register(envDocs, {
      group: 'Sending',
      default: 'on',
      description: "`on`: mail submitted on 587/465 leaves without the submitter's own Received line (their address, reverse name and login: relaybox's own hop `by MAIL_HOSTNAME ... with ESMTPSA id ...` stays) and without an X-Originating-IP header. `off`: the full Received line with `(Authenticated sender: ...)`, as Postfix writes it.",
    }),
};

type Env = Values<typeof variables & typeof mailboxes & typeof identity>;

export function check(env: Env, issue: Issue): void {
  const users = new Set([...env.MAIL_USERS, ...env.MAIL_USERS_FILE].map((user) => user.address));
  const seen = new Set<string>();
  for (const { user } of env.SEND_LIMITS) {
    if (!users.has(user)) issue('SEND_LIMITS', `${user} is not a user in MAIL_USERS or MAIL_USERS_FILE; limits are per authenticated user`);
    if (seen.has(user)) issue('SEND_LIMITS', `${user} is listed more than once`);
    seen.add(user);
  }
  const postmaster = env.POSTMASTER_ADDRESS;
  if (postmaster && users.size > 0 && env.MAIL_DOMAINS.includes(postmaster.slice(postmaster.lastIndexOf('@') + 1))) {
    const aliases = new Set([...env.MAIL_ALIASES, ...env.MAIL_ALIASES_FILE].map((entry) => entry.alias));
    if (!users.has(postmaster) && !aliases.has(postmaster)) issue('POSTMASTER_ADDRESS', `${postmaster} is in a local domain but is neither a user nor an alias; the postmaster's mail would bounce`, postmaster);
  }
}

export function toConfig(env: Env) {
  return {
    sending: {
      messagesPerHour: env.SEND_LIMIT_MESSAGES,
      recipientsPerDay: env.SEND_LIMIT_RECIPIENTS,
      suspendThreshold: env.SEND_SUSPEND_THRESHOLD,
      overrides: env.SEND_LIMITS,
    },
    postmaster: env.POSTMASTER_ADDRESS,
    submitterPrivacy: env.SUBMITTER_PRIVACY === 'on',
  };
}

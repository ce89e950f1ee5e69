// Limits on what one client may do: message size, recipients, AUTH attempts and bans.
import { z } from 'zod';
import { duration, integer, take, text } from '../fields.ts';
import { parseCidr, splitList } from '../values.ts';
import type { Values } from './area.ts';

export const variables = {
  MESSAGE_SIZE_LIMIT: text({ group: 'Limits', default: '26214400', description: 'Largest accepted message in bytes (Postfix message_size_limit).' }).transform((raw, ctx) => {
    const value = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || value < 1024 || value > 2 ** 31 - 1) {
      ctx.addIssue({ code: 'custom', message: 'a whole number of bytes from 1024 to 2147483647', input: raw });
      return z.NEVER;
    }
    return value;
  }),
  RECIPIENT_LIMIT: integer({ group: 'Limits', default: '100', description: 'Most recipients per message (Postfix smtpd_recipient_limit); more get 452 4.5.3.' }, 1, 100000, 'recipients'),
  AUTH_RATE_LIMIT: integer({ group: 'Abuse', default: '60', description: 'Most AUTH commands one client address may send per minute on the SMTP ports (Postfix smtpd_client_auth_rate_limit); 0 = no limit.' }, 0, 1000000, 'AUTH commands per minute'),
  AUTH_FAILURE_DELAY: integer({ group: 'Abuse', default: '2', description: 'Seconds Dovecot waits before answering a failed authentication (auth_failure_delay).' }, 0, 60, 'seconds'),
  AUTH_BAN_THRESHOLD: integer({ group: 'Abuse', default: '10', description: 'Failed authentications (SMTP or IMAP) from one client address within AUTH_BAN_WINDOW after which that address is refused at connect on every SMTP port and at login on IMAP for AUTH_BAN_DURATION; 0 = never ban. Bans survive a restart (STATE_DIR). 127.0.0.1, ::1 and the supervisor\'s probe address are never banned.' }, 0, 1000000, 'failures'),
  AUTH_BAN_WINDOW: duration({ group: 'Abuse', default: '10m', description: 'The window in which AUTH_BAN_THRESHOLD failures lead to a ban.' }, 7 * 86400),
  AUTH_BAN_DURATION: duration({ group: 'Abuse', default: '1h', description: 'How long a banned address stays refused.' }, 30 * 86400),
  AUTH_BAN_EXEMPT: text({ group: 'Abuse', description: 'Comma-separated CIDRs never banned (e.g. the office network, a monitoring host); their failures are still delayed by Dovecot.', list: true }).transform((raw, ctx) =>
    splitList(raw).map((item) => take(parseCidr(item), ctx, item)),
  ),
};

export function toConfig(env: Values<typeof variables>) {
  return {
    messageSizeLimit: env.MESSAGE_SIZE_LIMIT,
    recipientLimit: env.RECIPIENT_LIMIT,
    auth: {
      rateLimit: env.AUTH_RATE_LIMIT,
      failureDelaySeconds: env.AUTH_FAILURE_DELAY,
      ban: { threshold: env.AUTH_BAN_THRESHOLD, windowSeconds: env.AUTH_BAN_WINDOW, durationSeconds: env.AUTH_BAN_DURATION },
    },
    banExempt: env.AUTH_BAN_EXEMPT,
  };
}

// Who this relay is: its host name and the domains it receives mail for.
import { z } from 'zod';
import { take, text } from '../fields.ts';
import { parseDomain, splitList } from '../values.ts';
import type { Values } from './area.ts';

export const variables = {
  MAIL_HOSTNAME: text({ group: 'Identity', description: 'Fully-qualified host name of this relay: SMTP banner, HELO name, TLS certificate name. Required.' }).transform((raw, ctx) => {
    if (raw.trim() === '') {
      ctx.addIssue({ code: 'custom', message: 'required: the fully-qualified host name of this relay, e.g. mail.example.com', input: raw });
      return z.NEVER;
    }
    return take(parseDomain(raw), ctx, raw);
  }),
  MAIL_DOMAINS: text({ group: 'Identity', description: 'Comma-separated domains this box receives mail for on port 25 (delivered to local mailboxes). Empty = relay only.', list: true }).transform((raw, ctx) => [
    ...new Set(splitList(raw).map((item) => take(parseDomain(item), ctx, item))),
  ]),
};

export function toConfig(env: Values<typeof variables>) {
  return { hostname: env.MAIL_HOSTNAME, domains: env.MAIL_DOMAINS };
}

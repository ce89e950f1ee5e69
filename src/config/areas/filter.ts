// The content filter in front of inbound mail (rspamd on port 25), and the resolver the daemons use.
import { z } from 'zod';
import { envDocs, take, text } from '../fields.ts';
import { parseNameServer, splitList } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as identity } from './identity.ts';

/** A score: a number from 0 to 1000 with at most two decimals. */
const score = (fallback: string, description: string) =>
  text({ group: 'Filter', default: fallback, description }).transform((raw, ctx) => {
    const value = Number(raw.trim());
    if (!/^\d+(\.\d{1,2})?$/.test(raw.trim()) || value > 1000) {
      ctx.addIssue({ code: 'custom', message: `a score from 0 to 1000 such as ${fallback}`, input: raw });
      return z.NEVER;
    }
    return value;
  });

export const variables = {
  SPAM_FILTER: z
    .enum(['on', 'off'], { error: 'on or off' })
    .default('on')
    .register(envDocs, {
      group: 'Filter',
      default: 'on',
      description: '`on`: rspamd checks inbound mail on port 25 (SPF, DKIM, DMARC with an Authentication-Results header, spam score, GTUBE); while it starts or is down port 25 answers 451 4.7.1. Runs only with MAIL_DOMAINS. Authenticated users and TRUSTED_NETWORKS are never scanned. `off`: no filter.',
    }),
  SPAM_HEADER_SCORE: score('6', 'Inbound mail scoring at least this gets `X-Spam: Yes`.'),
  SPAM_REJECT_SCORE: score('15', 'Inbound mail scoring at least this is refused at the end of DATA (554 5.7.1); must be above SPAM_HEADER_SCORE. A failing DMARC p=reject and GTUBE are refused whatever the score.'),
  DNS_SERVERS: text({
    group: 'Filter',
    description: "Comma-separated name servers (`ip` or `ip:port`) for rspamd, `relaybox dns --check` and, for those on port 53, Postfix's delivery to MX hosts. Empty = the system resolver (/etc/resolv.conf).",
    list: true,
  }).transform((raw, ctx) => splitList(raw).map((item) => take(parseNameServer(item), ctx, item))),
};

type Env = Values<typeof variables & typeof identity>;

export function check(env: Env, issue: Issue): void {
  if (env.SPAM_REJECT_SCORE <= env.SPAM_HEADER_SCORE) issue('SPAM_REJECT_SCORE', `must be above SPAM_HEADER_SCORE (${env.SPAM_HEADER_SCORE})`, String(env.SPAM_REJECT_SCORE));
}

export function toConfig(env: Env) {
  const runs = env.SPAM_FILTER === 'on' && env.MAIL_DOMAINS.length > 0;
  return {
    filter: runs ? { headerScore: env.SPAM_HEADER_SCORE, rejectScore: env.SPAM_REJECT_SCORE } : undefined,
    dnsServers: env.DNS_SERVERS,
  };
}

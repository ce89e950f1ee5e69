// Relay routes: mail from some senders (a domain or one address) goes through its own smarthost,
// with its own credentials (Postfix sender_dependent_relayhost_maps and sender-dependent SASL).
import { z } from 'zod';
import { readText, take, text } from '../fields.ts';
import { hopKey, parseRoute, routeHops, parseRouteCredentials, type Credentials, type Route } from '../outbound-values.ts';
import { splitList } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as identity } from './identity.ts';
import type { variables as upstream } from './upstream.ts';

/** Postfix reads the first line of the key file, postsrsd too; shorter keys are guessable. */
const MIN_SRS_KEY = 16;

type Ctx = z.core.$RefinementCtx;

/** RELAY_ROUTES' entries; an item without `=` continues the previous entry's failover list (`@a=[x]:587, [y]:587`). */
function routeEntries(raw: string): string[] {
  const entries: string[] = [];
  for (const item of splitList(raw)) {
    if (!item.includes('=') && entries.length > 0) entries[entries.length - 1] += `,${item}`;
    else entries.push(item);
  }
  return entries;
}

/** Credential lines; `#` starts a comment line. Problems name the sender, never the password. */
function parseCredentialLines(raw: string, ctx: Ctx): Array<{ sender: string } & Credentials> {
  return raw
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
    .flatMap((line) => {
      const parsed = parseRouteCredentials(line);
      if (parsed.ok) return [parsed.value];
      ctx.addIssue({ code: 'custom', message: parsed.message, input: '' });
      return [];
    });
}

const CREDENTIALS_DESCRIPTION =
  'Credentials for RELAY_ROUTES, one route per line: `sender username:password` (the sender exactly as in RELAY_ROUTES; the password may contain inner spaces, no leading or trailing ones). A route without a line here is used without AUTH.';

export const variables = {
  RELAY_ROUTES: text({
    group: 'Upstream',
    description:
      'Smarthosts chosen by sender: entries `sender=[host]:port` separated by spaces or newlines, the sender as `@domain` or `user@domain` (an address beats its domain), e.g. `@b.example=[smtp.second.example]:587`; port 465 (or a `smtps:` prefix, as in RELAY_HOST) is implicit TLS, other ports STARTTLS. Used only for mail from authenticated users and TRUSTED_NETWORKS; other senders, bounces, notices and mail forwarded from port 25 use RELAY_HOST. Each route gets TLS per RELAY_TLS, its certificate checked against its host name (also sent as SNI). A route may list up to 5 smarthosts in failover order, separated by commas (`@b.example=[smtp-a.example]:587, [smtp-b.example]:587`), all in one TLS mode, all given the route\'s credentials.',
    list: true,
  }).transform((raw, ctx) => routeEntries(raw).map((entry) => take(parseRoute(entry), ctx, entry))),
  RELAY_ROUTE_CREDENTIALS: text({ group: 'Upstream', description: CREDENTIALS_DESCRIPTION, secret: true, list: true }).transform(parseCredentialLines),
  SRS_SECRET_FILE: text({
    group: 'Upstream',
    description: `File holding the key that signs SRS addresses (its first line, at least ${MIN_SRS_KEY} characters; the format of postsrsd's secrets file). Give every relay replica the same file (a Kubernetes secret) so a bounce reaching any of them is recognised. Empty = a key made once in STATE_DIR/srs-secret. Read at start.`,
  }).transform((path, ctx) => {
    if (path === '') return undefined;
    const key = readText(path, ctx, 'one line');
    if (key !== undefined && key.trim().length < MIN_SRS_KEY) ctx.addIssue({ code: 'custom', message: `the key (its first line) is shorter than ${MIN_SRS_KEY} characters; make one with: openssl rand -base64 24`, input: path });
    return path;
  }),
  RELAY_ROUTE_CREDENTIALS_FILE: text({ group: 'Upstream', description: 'File in the RELAY_ROUTE_CREDENTIALS format (a Docker or Kubernetes secret).' }).transform((path, ctx) =>
    path === '' ? [] : parseCredentialLines(readText(path, ctx) ?? '', ctx),
  ),
};

type Env = Values<typeof variables & typeof upstream & typeof identity>;

const credentialsOf = (env: Env) => [...env.RELAY_ROUTE_CREDENTIALS, ...env.RELAY_ROUTE_CREDENTIALS_FILE];

export function check(env: Env, issue: Issue): void {
  if (env.RELAY_ROUTE_CREDENTIALS.length > 0 && env.RELAY_ROUTE_CREDENTIALS_FILE.length > 0) issue('RELAY_ROUTE_CREDENTIALS_FILE', 'set either RELAY_ROUTE_CREDENTIALS or RELAY_ROUTE_CREDENTIALS_FILE, not both');
  const credentialsVariable = env.RELAY_ROUTE_CREDENTIALS.length > 0 ? 'RELAY_ROUTE_CREDENTIALS' : 'RELAY_ROUTE_CREDENTIALS_FILE';
  const senders = new Set<string>();
  const hostname = env.MAIL_HOSTNAME?.toLowerCase() ?? '';
  for (const route of env.RELAY_ROUTES) {
    if (route.sender.slice(route.sender.lastIndexOf('@') + 1) === hostname) {
      issue('RELAY_ROUTES', `${route.sender}: MAIL_HOSTNAME's addresses are the SRS senders of forwarded mail (and its own notices); a route for them would carry mail nobody authenticated with the route's credentials`);
    }
    if (senders.has(route.sender)) issue('RELAY_ROUTES', `${route.sender} has more than one route; one smarthost per sender`);
    senders.add(route.sender);
  }
  tlsModeConflicts(env, issue);
  const seen = new Set<string>();
  for (const { sender } of credentialsOf(env)) {
    if (!senders.has(sender)) issue(credentialsVariable, `${sender} has credentials but no route in RELAY_ROUTES; add ${sender}=[host]:port there`);
    if (seen.has(sender)) issue(credentialsVariable, `${sender} has more than one line; one set of credentials per route`);
    seen.add(sender);
  }
  const anyCredentials = credentialsOf(env).length > 0 || Boolean(env.RELAY_USERNAME || env.RELAY_USERNAME_FILE);
  if (env.RELAY_TLS === 'may' && anyCredentials) {
    issue('RELAY_TLS', 'may would send the relay password without TLS to a smarthost that does not offer it; use verify (the default) or, knowingly, encrypt', 'may');
  }
  if (env.RELAY_TLS && !env.RELAY_HOST && env.RELAY_ROUTES.length === 0) issue('RELAY_TLS', 'applies to RELAY_HOST and RELAY_ROUTES; set one of them, or leave RELAY_TLS empty', env.RELAY_TLS);
}

/** Postfix keys TLS policy by nexthop: one smarthost cannot be both implicit TLS and STARTTLS. */
function tlsModeConflicts(env: Env, issue: Issue): void {
  const modes = new Map<string, { implicitTls: boolean; by: string }>();
  for (const hop of env.RELAY_HOST ?? []) modes.set(hopKey(hop), { implicitTls: hop.implicitTls, by: 'RELAY_HOST' });
  for (const route of env.RELAY_ROUTES) {
    for (const hop of routeHops(route)) {
      const known = modes.get(hopKey(hop));
      if (known && known.implicitTls !== hop.implicitTls) {
        const mode = (implicit: boolean) => (implicit ? 'implicit TLS (smtps:)' : 'STARTTLS');
        issue('RELAY_ROUTES', `${route.sender} reaches ${hopKey(hop)} with ${mode(hop.implicitTls)}, but ${known.by} reaches the same smarthost with ${mode(known.implicitTls)}; use one mode per smarthost`);
      } else if (!known) modes.set(hopKey(hop), { implicitTls: hop.implicitTls, by: route.sender });
    }
  }
}

export type RelayRoute = Route & { credentials?: Credentials };

export function toConfig(env: Env) {
  const credentials = new Map(credentialsOf(env).map(({ sender, username, password }) => [sender, { username, password }]));
  return {
    /** SRS_SECRET_FILE's path; unset: STATE_DIR/srs-secret, made once. */
    srsSecretFile: env.SRS_SECRET_FILE,
    relayRoutes: env.RELAY_ROUTES.map((route): RelayRoute => ({ ...route, ...(credentials.has(route.sender) ? { credentials: credentials.get(route.sender)! } : {}) })),
  };
}

// env -> validated Config, or one error line per problem naming the variable (secrets masked).
import type { z } from 'zod';
import { warnings as upstreamWarnings } from './areas/upstream.ts';
import { warnings as directWarnings } from './areas/direct.ts';
import { controlProblem } from './fields.ts';
import { envDocs, envSchema, envVariables, type Config, type EnvDoc } from './schema.ts';

export type Env = Record<string, string | undefined>;

export type LoadResult =
  | { ok: true; config: Config; warnings: string[] }
  | { ok: false; errors: string[] };

/** The documentation registered for each variable, found on the schema or the one it wraps. */
export function envReference(): Array<{ name: string } & EnvDoc> {
  return Object.entries(envVariables.shape).map(([name, schema]) => {
    const doc = findDoc(schema as z.ZodType);
    if (!doc) throw new Error(`${name} has no documentation in the schema`);
    return { name, ...doc };
  });
}

function findDoc(schema: z.ZodType | undefined): EnvDoc | undefined {
  if (!schema) return undefined;
  const own = envDocs.get(schema);
  if (own?.description) return own;
  const def = schema.def as unknown as Record<string, z.ZodType | undefined>;
  return findDoc(def.in) ?? findDoc(def.innerType) ?? findDoc(def.out);
}

const SECRET_VARIABLES: ReadonlySet<string> = new Set(envReference().filter((v) => v.secret).map((v) => v.name));

function shown(variable: string, value: unknown): string {
  if (SECRET_VARIABLES.has(variable)) return '';
  if (typeof value !== 'string') return '';
  const text = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return `=${JSON.stringify(text)}`;
}

/** Values with control characters, refused before anything parses them (the value is not shown). */
function controlErrors(known: Env): string[] {
  return envReference().flatMap(({ name, list }) => {
    const problem = known[name] === undefined ? undefined : controlProblem(known[name], list === true);
    return problem ? [`${name}: ${problem}`] : [];
  });
}

export function loadConfig(env: Env): LoadResult {
  const known = Object.fromEntries(envReference().map(({ name }) => [name, env[name] === undefined ? undefined : env[name]]));
  const control = controlErrors(known);
  const parsed = envSchema.safeParse(known, { reportInput: true });
  if (control.length > 0 || !parsed.success) {
    const refused = new Set(control.map((error) => error.slice(0, error.indexOf(':'))));
    const errors = (parsed.error?.issues ?? []).flatMap((issue) => {
      const variable = String(issue.path[0] ?? 'environment');
      const value = issue.input === undefined || issue.input === '' ? known[variable] : issue.input;
      return refused.has(variable) ? [] : [`${variable}${shown(variable, value)}: ${issue.message}`];
    });
    return { ok: false, errors: [...new Set([...control, ...errors])] };
  }
  const config = parsed.data;
  const warnings = config.users
    .filter((user) => user.scheme === 'PLAIN')
    .map((user) => `MAIL_USERS: ${user.address} uses {PLAIN}; store a hash instead (relaybox hash-password)`);
  warnings.push(...upstreamWarnings(config), ...directWarnings(config));
  return { ok: true, config, warnings };
}

/** The config as check-config and /health may show it: every secret replaced. */
export function maskedConfig(config: Config): unknown {
  return {
    ...config,
    users: config.users.map((user) => ({ address: user.address, scheme: user.scheme, hash: '***' })),
    selftest: {
      credentials: config.selftest.credentials && { user: config.selftest.credentials.user, password: '***' },
      token: config.selftest.token && '***',
    },
    dkim: config.dkim ?? 'off (DKIM_SIGNING=off, or no DKIM_DOMAINS and no MAIL_DOMAINS)',
    filter: config.filter ?? 'off (SPAM_FILTER=off, or no MAIL_DOMAINS: relay only)',
    relay: config.relay && {
      ...config.relay,
      credentials: config.relay.credentials && { username: config.relay.credentials.username, password: '***' },
    },
    admin: config.admin && { ...config.admin, token: config.admin.token && '***' },
    redis: config.redis && { url: '***', ...(config.redis.socketPath ? { socketPath: config.redis.socketPath } : {}) },
    handoff: config.handoff && { ...config.handoff, password: '***' },
    relayRoutes: config.relayRoutes.map((route) => ({ ...route, ...(route.credentials ? { credentials: { username: route.credentials.username, password: '***' } } : {}) })),
  };
}

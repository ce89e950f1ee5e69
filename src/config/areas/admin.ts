// The admin API and web console: off unless a token or admin accounts are given; on its own
// listener, loopback by default, apart from the unauthenticated /health, /ready and /metrics.
import { isIP } from 'node:net';
import { z } from 'zod';
import { secretFile, text } from '../fields.ts';
import { eitherOr, type Issue, type Values } from './area.ts';
import type { variables as mailboxes } from './mailboxes.ts';

export const DEFAULT_ADMIN_PORT = 8025;

export const variables = {
  ADMIN_TOKEN: text({ group: 'Administration', description: 'Enables the admin API and console (PORT_ADMIN) for callers sending `Authorization: Bearer <token>`, or logging in to the console with it; at least 16 characters (e.g. `openssl rand -hex 24`). Unset, with no ADMIN_USERS = no admin listener.', secret: true }),
  ADMIN_TOKEN_FILE: secretFile({ group: 'Administration', description: 'File holding ADMIN_TOKEN.' }),
  ADMIN_USERS: text({ group: 'Administration', description: 'Comma-separated users from MAIL_USERS (or MAIL_USERS_FILE) who may log in to the admin console and API with their mail password (checked by Dovecot; failed logins count toward AUTH_BAN_THRESHOLD like any other).', list: true }).transform((raw) => [...new Set(raw.split(/[\s,]+/).map((u) => u.trim().toLowerCase()).filter(Boolean))]),
  PORT_ADMIN: text({ group: 'Administration', default: String(DEFAULT_ADMIN_PORT), description: 'Port of the admin API and console (HTTP, JSON; only when ADMIN_TOKEN or ADMIN_USERS is set). 0 disables it.' }).transform((raw, ctx) => {
    const value = Number(raw.trim());
    if (!/^\d{1,5}$/.test(raw.trim()) || value > 65535) {
      ctx.addIssue({ code: 'custom', message: 'a TCP port from 1 to 65535, or 0 to disable the admin listener', input: raw });
      return z.NEVER;
    }
    return value;
  }),
  ADMIN_BIND_ADDRESS: text({ group: 'Administration', default: '127.0.0.1', description: 'Address the admin listener binds to. Loopback by default: reach it with `docker compose exec`, an SSH tunnel or `kubectl port-forward`; bind it wider only behind TLS you terminate.' }).transform((raw, ctx) => {
    const address = raw.trim();
    if (isIP(address) === 0) {
      ctx.addIssue({ code: 'custom', message: 'an IPv4 or IPv6 address such as 127.0.0.1 or ::', input: raw });
      return z.NEVER;
    }
    return address;
  }),
};

type Env = Values<typeof variables> & Values<Pick<typeof mailboxes, 'MAIL_USERS' | 'MAIL_USERS_FILE'>>;

export function check(env: Env, issue: Issue): void {
  eitherOr(env, issue, 'ADMIN_TOKEN', 'ADMIN_TOKEN_FILE');
  const token = env.ADMIN_TOKEN || env.ADMIN_TOKEN_FILE;
  if (token && token.length < 16) issue(env.ADMIN_TOKEN ? 'ADMIN_TOKEN' : 'ADMIN_TOKEN_FILE', 'at least 16 characters (e.g. openssl rand -hex 24)');
  const users = new Set([...env.MAIL_USERS, ...env.MAIL_USERS_FILE].map((u) => u.address));
  for (const user of env.ADMIN_USERS) if (!users.has(user)) issue('ADMIN_USERS', `${user} is not a user in MAIL_USERS or MAIL_USERS_FILE; admins log in with their mail password`);
}

export function toConfig(env: Env) {
  const token = env.ADMIN_TOKEN || env.ADMIN_TOKEN_FILE || undefined;
  const enabled = env.PORT_ADMIN > 0 && (token !== undefined || env.ADMIN_USERS.length > 0);
  return { admin: enabled ? { port: env.PORT_ADMIN, bindAddress: env.ADMIN_BIND_ADDRESS, token, users: env.ADMIN_USERS } : undefined };
}

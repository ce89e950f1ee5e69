// Where relaybox listens and keeps its state.
import { isAbsolute } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { LISTENERS, type Ports, type Role } from '../../listeners.ts';
import { portVariables, text } from '../fields.ts';
import type { Issue, Values } from './area.ts';

export const variables = {
  ...portVariables,
  BIND_ADDRESS: text({ group: 'Ports', description: 'IP address every listener binds to. Empty = all addresses.' }).transform((raw, ctx) => {
    const address = raw.trim();
    if (address !== '' && isIP(address) === 0) {
      ctx.addIssue({ code: 'custom', message: 'an IPv4 or IPv6 address such as 127.0.0.1, or empty for all addresses', input: raw });
      return z.NEVER;
    }
    return address === '' ? undefined : address;
  }),
  STATE_DIR: text({ group: 'Storage', default: '/var/lib/relaybox', description: 'Where rendered configuration, the mail queue, mailboxes and the generated certificate live (a volume in the container).' }).transform((raw, ctx) => {
    const dir = raw.replace(/\/+$/, '');
    // Unix socket paths (queue/private/dovecot-lmtp and Dovecot's base_dir) must fit in 107 bytes.
    if (!isAbsolute(dir) || dir.length > 64 || /[\s,=$"'\\]/.test(dir)) {
      ctx.addIssue({ code: 'custom', message: 'an absolute directory path of at most 64 characters without spaces, commas, quotes, "=" or "$"', input: raw });
      return z.NEVER;
    }
    return dir;
  }),
};

type Env = Values<typeof variables>;

export function check(env: Env & { ROLE: Role }, issue: Issue): void {
  // Only the listeners of this replica's role listen.
  const listening = LISTENERS.filter((row) => (row.inRoles as readonly Role[]).includes(env.ROLE));
  for (const [i, a] of listening.entries()) {
    for (const b of listening.slice(i + 1)) {
      const [portA, portB] = [env[a.variable], env[b.variable]];
      if (portA !== 0 && portA === portB) issue(b.variable, `port ${portB} is also ${a.variable}; every enabled listener needs its own port`, String(portB));
    }
  }
}

export function toConfig(env: Env) {
  return {
    ports: Object.fromEntries(LISTENERS.map((row) => [row.name, env[row.variable]])) as Ports,
    bindAddress: env.BIND_ADDRESS,
    stateDir: env.STATE_DIR,
  };
}

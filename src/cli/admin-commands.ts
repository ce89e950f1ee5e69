// `relaybox status|queue|users|bans|dkim ...`: the operator's commands, each one request to the
// running supervisor over its control socket (STATE_DIR/control.sock). Tables for people, --json for
// scripts. Exit 0 done, 1 refused or failed, 2 bad usage, 3 the supervisor cannot be reached.
import { parseArgs } from 'node:util';
import { control, EXIT_UNREACHABLE, Unreachable } from './control-client.ts';
import { ADMIN_USAGE } from './usage.ts';
import { renderActed, renderBans, renderDkim, renderQueue, renderRecord, renderShown, renderStatus, renderUsers, renderAppPasswords } from './render.ts';

const API = '/api/v1';



class Usage extends Error {}

const FILTER_OPTIONS = { state: { type: 'string' }, sender: { type: 'string' }, recipient: { type: 'string' }, user: { type: 'string' }, 'older-than': { type: 'string' }, 'newer-than': { type: 'string' } } as const;
const COMMON = { json: { type: 'boolean', default: false }, 'state-dir': { type: 'string' } } as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Request = { method: 'GET' | 'POST' | 'DELETE'; path: string; body?: unknown; render: (answer: any) => string; exit?: (answer: any) => number };

type Options = Record<string, { type: 'string' | 'boolean'; default?: boolean }>;

function parse(args: string[], options: Options): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (error) {
    throw new Usage((error as Error).message);
  }
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new Usage(`give exactly one ${what}`);
  return encodeURIComponent(positionals[0]!);
}

function filters(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.keys(FILTER_OPTIONS).flatMap((key) => (typeof values[key] === 'string' ? [[key, values[key] as string]] : [])));
}

function queueRequest(sub: string, args: string[]): { request: Request; json: boolean; stateDir?: string } {
  const { values, positionals } = parse(args, { ...FILTER_OPTIONS, all: { type: 'boolean', default: false }, body: { type: 'boolean', default: false } });
  const base = { json: values.json as boolean, stateDir: values['state-dir'] as string | undefined };
  if (sub === 'list') {
    if (positionals.length > 0) throw new Usage('queue list takes filters, not ids (queue show ID for one message)');
    return { ...base, request: { method: 'GET', path: `${API}/queue?${new URLSearchParams(filters(values))}`, render: renderQueue } };
  }
  if (sub === 'show') return { ...base, request: { method: 'GET', path: `${API}/queue/${one(positionals, 'queue id')}${values.body ? '?body=1' : ''}`, render: renderShown } };
  if (['hold', 'release', 'delete', 'retry'].includes(sub)) {
    return { ...base, request: { method: 'POST', path: `${API}/queue/${sub}`, body: { ...(positionals.length ? { ids: positionals } : {}), filter: filters(values), all: values.all }, render: renderActed } };
  }
  throw new Usage(`unknown queue command "${sub}"; use list, show, hold, release, delete or retry`);
}

const APP_PASSWORD_USAGE = 'users app-password add USER NAME [--scope smtp|imap|both] | list [USER] | revoke USER NAME';

function appPasswordRequest(args: string[]): { request: Request; json: boolean; stateDir?: string } {
  const [action, ...rest] = args;
  const { values, positionals } = parse(rest, { scope: { type: 'string' } });
  const base = { json: values.json as boolean, stateDir: values['state-dir'] as string | undefined };
  const pair = () => {
    if (positionals.length !== 2) throw new Usage(`app-password ${action}: give USER and NAME (${APP_PASSWORD_USAGE})`);
    return positionals.map((p) => encodeURIComponent(p)) as [string, string];
  };
  if (values.scope !== undefined && action !== 'add') throw new Usage('--scope goes with app-password add');
  switch (action) {
    case 'add': {
      const scope = values.scope as string | undefined;
      if (scope !== undefined && !['smtp', 'imap', 'both'].includes(scope)) throw new Usage(`--scope "${scope}": use smtp, imap or both`);
      const [user, name] = pair();
      return {
        ...base,
        request: { method: 'POST', path: `${API}/users/${user}/app-passwords`, body: { name: decodeURIComponent(name), ...(scope ? { scope } : {}) }, render: (a) => `app password ${a.name} for ${a.user} (${a.scope}):

    ${a.password}

shown this once: enter it in the device now (login name ${a.user})` },
      };
    }
    case 'list': {
      if (positionals.length > 1) throw new Usage(`app-password list takes at most one USER (${APP_PASSWORD_USAGE})`);
      const path = positionals.length === 1 ? `${API}/users/${encodeURIComponent(positionals[0]!)}/app-passwords` : `${API}/app-passwords`;
      return { ...base, request: { method: 'GET', path, render: renderAppPasswords } };
    }
    case 'revoke': {
      const [user, name] = pair();
      return { ...base, request: { method: 'DELETE', path: `${API}/users/${user}/app-passwords/${name}`, render: (a) => `revoked app password ${a.name} of ${a.user}; refused from the next login on` } };
    }
    default:
      throw new Usage(`unknown app-password command "${action ?? ''}"; use ${APP_PASSWORD_USAGE}`);
  }
}

function usersRequest(sub: string, args: string[]): { request: Request; json: boolean; stateDir?: string } {
  if (sub === 'app-password') return appPasswordRequest(args);
  const { values, positionals } = parse(args, { reason: { type: 'string' }, 'release-held': { type: 'boolean', default: false }, 'delete-held': { type: 'boolean', default: false } });
  const base = { json: values.json as boolean, stateDir: values['state-dir'] as string | undefined };
  const user = () => one(positionals, 'user address');
  switch (sub) {
    case 'list':
      return { ...base, request: { method: 'GET', path: `${API}/users`, render: renderUsers } };
    case 'suspend':
      if (!values.reason) throw new Usage('users suspend USER --reason TEXT: say why (it is kept with the suspension and audited)');
      return { ...base, request: { method: 'POST', path: `${API}/users/${user()}/suspend`, body: { reason: values.reason }, render: (a) => `suspended ${a.user}; ${a.held} recent message(s) put on hold` } };
    case 'unsuspend': {
      if (values['release-held'] && values['delete-held']) throw new Usage('--release-held or --delete-held, not both');
      const held = values['release-held'] ? 'release' : values['delete-held'] ? 'delete' : undefined;
      return { ...base, request: { method: 'POST', path: `${API}/users/${user()}/unsuspend`, body: held ? { held } : {}, render: (a) => `unsuspended ${a.user}${a.held ? `; held mail: ${renderActed(a.held)}` : ''}` } };
    }
    case 'release-held':
    case 'delete-held':
      return { ...base, request: { method: 'POST', path: `${API}/users/${user()}/held/${sub.replace('-held', '')}`, render: renderActed } };
    default:
      throw new Usage(`unknown users command "${sub}"; use list, suspend, unsuspend, release-held, delete-held or app-password`);
  }
}

function bansRequest(sub: string, args: string[]): { request: Request; json: boolean; stateDir?: string } {
  const { values, positionals } = parse(args, { duration: { type: 'string' }, reason: { type: 'string' } });
  const base = { json: values.json as boolean, stateDir: values['state-dir'] as string | undefined };
  switch (sub) {
    case 'list':
      return { ...base, request: { method: 'GET', path: `${API}/bans`, render: renderBans } };
    case 'lift':
      return { ...base, request: { method: 'DELETE', path: `${API}/bans/${one(positionals, 'address')}`, render: (a) => `lifted the ban on ${a.address}` } };
    case 'add':
      one(positionals, 'address');
      return { ...base, request: { method: 'POST', path: `${API}/bans`, body: { address: positionals[0], duration: values.duration, reason: values.reason }, render: (a) => `banned ${a.address} for ${a.remainingSeconds} s on ${a.ports.join(' ')}` } };
    default:
      throw new Usage(`unknown bans command "${sub}"; use list, lift or add`);
  }
}

function dkimRequest(sub: string, args: string[]): { request: Request; json: boolean; stateDir?: string } {
  const { values, positionals } = parse(args, { selector: { type: 'string' }, wait: { type: 'string' }, grace: { type: 'string' }, force: { type: 'boolean', default: false } });
  const base = { json: values.json as boolean, stateDir: values['state-dir'] as string | undefined };
  if (sub === 'list') return { ...base, request: { method: 'GET', path: `${API}/dkim`, render: renderDkim } };
  const step = { rotate: 'start', verify: 'verify', retire: 'retire', cancel: 'cancel' }[sub];
  if (!step) throw new Usage(`unknown dkim command "${sub}"; use list, rotate, verify, retire or cancel`);
  const body = { selector: values.selector, wait: values.wait, grace: values.grace, force: values.force };
  const render = (a: any) => // eslint-disable-line @typescript-eslint/no-explicit-any
    step === 'start'
      ? `new selector ${a.selector} for ${a.domain} (not signing yet). Publish:\n${renderRecord(a.record)}\nthen: relaybox dkim verify ${a.domain} --wait 10m`
      : step === 'verify'
        ? a.switched
          ? `${a.domain} now signs with ${a.selector}; the old record stays listed until ${new Date(a.retireAfter).toISOString()}, then: relaybox dkim retire ${a.domain}`
          : `${a.domain}: ${a.selector} is not published yet (${a.check.status}: ${a.check.detail}); signing unchanged`
        : step === 'retire'
          ? `${a.domain}: retired ${a.retired.join(', ')}; remove their records from DNS`
          : `${a.domain}: rotation cancelled (${a.cancelled} deleted)`;
  // A verify that found the record missing or wrong switched nothing: exit 1, so a script can wait on it.
  const exit = (a: { switched?: boolean }) => (step === 'verify' && !a.switched ? 1 : 0);
  return { ...base, request: { method: 'POST', path: `${API}/dkim/${one(positionals, 'domain')}/${step}`, body, render, exit } };
}

const BUILDERS: Record<string, (sub: string, args: string[]) => { request: Request; json: boolean; stateDir?: string }> = {
  queue: queueRequest,
  users: usersRequest,
  bans: bansRequest,
  dkim: dkimRequest,
  status: (sub, args) => {
    const { values, positionals } = parse(sub ? [sub, ...args] : args, {});
    if (positionals.length > 0) throw new Usage('status takes no arguments');
    return { json: values.json as boolean, stateDir: values['state-dir'] as string | undefined, request: { method: 'GET', path: `${API}/status`, render: renderStatus } };
  },
};


/** Runs one admin command; resolves with the exit code. */
export async function adminCommand(command: string, args: string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const [sub = command === 'status' ? '' : 'list', ...rest] = args;
  let built;
  try {
    built = BUILDERS[command]!(sub.startsWith('--') ? (command === 'status' ? sub : 'list') : sub, sub.startsWith('--') && command !== 'status' ? args : rest);
  } catch (error) {
    if (error instanceof Usage) {
      err(`relaybox ${command}: ${error.message}\nusage:\n${ADMIN_USAGE}`);
      return 2;
    }
    throw error;
  }
  const socket = `${built.stateDir ?? process.env.STATE_DIR ?? '/var/lib/relaybox'}/control.sock`;
  try {
    const { status, body } = await control(socket, built.request.method, built.request.path, built.request.body);
    if (status >= 200 && status < 300) {
      out(built.json ? JSON.stringify(body, null, 2) : built.request.render(body));
      return built.request.exit?.(body) ?? 0;
    }
    const message = (body as { error?: string }).error ?? `HTTP ${status}`;
    if (built.json) out(JSON.stringify(body, null, 2));
    err(`relaybox ${command} ${sub}: ${message}`);
    return status === 400 ? 2 : 1;
  } catch (error) {
    if (error instanceof Unreachable) {
      err(`relaybox ${command}: ${error.message}`);
      return EXIT_UNREACHABLE;
    }
    throw error;
  }
}

// Builders for environment variables: each registers its documentation (for the generated
// reference) and validates its value, turning a bad one into an issue that names what would be valid.
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { LISTENERS, type Listener } from '../listeners.ts';
import { parseAliasEntry, parseUserEntry, splitUserEntries, type AliasEntry, type Parsed, type UserEntry } from './values.ts';

export interface EnvDoc {
  group: string;
  description: string;
  /** Shown as the default in the reference; also the value used when the variable is unset. */
  default?: string;
  /** Never printed: masked in errors, check-config output, logs and HTTP bodies. */
  secret?: boolean;
  /** A list whose entries may be separated by line breaks; every other value is one line. */
  list?: boolean;
  /** A path whose content is watched for hot reload (every *_FILE variable is a watched file). */
  watched?: 'file' | 'directory';
}

/** Control characters that may end up as a second line (or a cut line) in a rendered file. */
const CONTROL = /[\x00-\x1f\x7f]/;
/** In lists and in files of several lines: line breaks and tabs separate entries; the rest is refused. */
const CONTROL_IN_LINES = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** Why a value is refused for its control characters, or undefined when it has none. */
export function controlProblem(value: string, lines: boolean): string | undefined {
  if (!(lines ? CONTROL_IN_LINES : CONTROL).test(value)) return undefined;
  return lines
    ? 'contains a control character (NUL or similar); only printable text, tabs and line breaks are allowed'
    : 'contains a line break or another control character; give a single line of printable text';
}

export const envDocs = z.registry<EnvDoc>();

type Ctx = z.core.$RefinementCtx;

/** Adds an issue for a failed parse and returns z.NEVER, or returns the value. */
export function take<T>(result: Parsed<T>, ctx: Ctx, input: string): T {
  if (result.ok) return result.value;
  ctx.addIssue({ code: 'custom', message: result.message, input });
  return z.NEVER;
}

/** The file's text, or undefined after adding an issue naming the problem. */
export function readText(path: string, ctx: Ctx, shape: 'lines' | 'one line' = 'lines'): string | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const value = shape === 'one line' ? text.replace(/\r?\n$/, '') : text;
    const problem = controlProblem(value, shape === 'lines');
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `the file ${problem}`, input: path });
      return undefined;
    }
    return value;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    ctx.addIssue({ code: 'custom', message: `cannot read the file (${code}); give the path of a readable file`, input: path });
    return undefined;
  }
}

export const text = (doc: EnvDoc) => z.string().default(doc.default ?? '').register(envDocs, doc);

/** A PORT_* variable, from its row in the listeners table. */
const port = ({ variable, defaultPort, purpose }: Listener) =>
  z
    .string()
    .trim()
    .default(String(defaultPort))
    .transform((raw, ctx) => {
      const value = Number(raw);
      if (!/^\d{1,5}$/.test(raw) || value > 65535) {
        ctx.addIssue({ code: 'custom', message: `a TCP port from 1 to 65535, or 0 to disable ${purpose}`, input: raw });
        return z.NEVER;
      }
      return value;
    })
    .register(envDocs, { group: 'Ports', default: String(defaultPort), description: `${purpose}; 0 disables it. (Named ${variable}, not *_PORT, so Kubernetes service variables cannot collide.)` });

type PortVariables = { [L in Listener as L['variable']]: ReturnType<typeof port> };
export const portVariables = Object.fromEntries(LISTENERS.map((row) => [row.variable, port(row)])) as PortVariables;

function parseUsers(raw: string, ctx: Ctx): UserEntry[] {
  return splitUserEntries(raw).flatMap((entry) => {
    const parsed = parseUserEntry(entry);
    if (parsed.ok) return [parsed.value];
    ctx.addIssue({ code: 'custom', message: parsed.message, input: '' });
    return [];
  });
}

export const usersList = z.string().default('').transform(parseUsers).register(envDocs, {
  group: 'Users',
  description:
    'Accounts allowed to authenticate (SMTP AUTH and IMAP): entries `address:{SCHEME}hash` separated by spaces or newlines. Schemes: {ARGON2ID}, {ARGON2I}, {BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT}; {PLAIN} works but is warned about. Make a hash with `relaybox hash-password`. A user may send only as their own address.',
  secret: true,
  list: true,
});

export const usersFile = z
  .string()
  .default('')
  .transform((path, ctx) => parseUsers(path === '' ? '' : (readText(path, ctx) ?? ''), ctx))
  .register(envDocs, {
    group: 'Users',
    description: 'Path of a file in the MAIL_USERS format (a Docker or Kubernetes secret); lines starting with # are comments. May be combined with MAIL_USERS; an address in both is an error.',
  });

export function parseAliases(raw: string, ctx: Ctx): AliasEntry[] {
  return splitUserEntries(raw).flatMap((entry) => {
    const parsed = parseAliasEntry(entry);
    if (parsed.ok) return [parsed.value];
    ctx.addIssue({ code: 'custom', message: parsed.message, input: entry });
    return [];
  });
}

export const ALIASES_DESCRIPTION =
  'Aliases for the local domains: entries `alias@domain:target[,target...]` separated by spaces or newlines; targets may be local users or remote addresses; `@domain:target` is a catch-all. A user may also send as the aliases that point to them.';

export const secretFile = (doc: EnvDoc) =>
  text(doc).transform((path, ctx) => (path === '' ? undefined : readText(path, ctx, 'one line')));

export const pemFile = (doc: EnvDoc, kind: 'certificate' | 'key') =>
  text(doc).transform((path, ctx) => {
    if (path === '') return undefined;
    const pem = readText(path, ctx);
    if (pem === undefined) return z.NEVER;
    try {
      if (kind === 'certificate') new X509Certificate(pem);
      else createPrivateKey(pem);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a PEM ${kind === 'certificate' ? 'certificate' : 'private key'}; give a PEM file`, input: path });
      return z.NEVER;
    }
    return { path, pem };
  });

/** A whole number within bounds, with a default. */
export const integer = (doc: EnvDoc & { default: string }, min: number, max: number, unit: string) =>
  text(doc).transform((raw, ctx) => {
    const value = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
      ctx.addIssue({ code: 'custom', message: `a whole number of ${unit} from ${min} to ${max}`, input: raw });
      return z.NEVER;
    }
    return value;
  });

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90`, `90s`, `15m`, `1h`, `1d` -> seconds. */
export const duration = (doc: EnvDoc & { default: string }, maxSeconds: number) =>
  text(doc).transform((raw, ctx) => {
    const match = /^(\d+)([smhd]?)$/.exec(raw.trim());
    const seconds = match ? Number(match[1]) * DURATION_UNITS[match[2] || 's']! : NaN;
    if (!match || seconds < 1 || seconds > maxSeconds) {
      ctx.addIssue({ code: 'custom', message: `a duration such as 90s, 15m, 1h or 1d (at least 1s, at most ${maxSeconds / 86400} days)`, input: raw });
      return z.NEVER;
    }
    return seconds;
  });


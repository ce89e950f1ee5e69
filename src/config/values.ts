// Parsers for the small value languages the environment uses (domains, CIDRs, relay hosts, users).
// Each returns either a value or a message saying what would be valid; the schema turns messages into issues.
import { isIP } from 'node:net';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A DNS name with at least two labels, lowercased; no trailing dot. */
export function parseDomain(raw: string): Parsed<string> {
  const name = raw.trim().toLowerCase();
  if (name.length === 0 || name.length > 253) return fail('a domain name such as example.com');
  const labels = name.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels.at(-1) ?? '')) {
    return fail('a domain name such as example.com (letters, digits and hyphens, at least two labels, no trailing dot)');
  }
  return ok(name);
}

/** Splits a list on commas and/or whitespace, dropping empty items. */
export function splitList(raw: string): string[] {
  return raw.split(/[\s,]+/).filter((item) => item.length > 0);
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a host route). */
export function parseCidr(raw: string): Parsed<Cidr> {
  const [address = '', prefixText, extra] = raw.split('/');
  const family = isIP(address);
  if (extra !== undefined || (family !== 4 && family !== 6)) {
    return fail('CIDRs such as 192.0.2.0/24 or 2001:db8::/32, separated by commas');
  }
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) {
    return fail(`a prefix length from 0 to ${max} after the "/"`);
  }
  return ok({ address, prefix, family });
}

/** A trusted network wider than this is most of the Internet: port 25 would be an open relay. */
export const MIN_TRUSTED_PREFIX = { 4: 8, 6: 32 } as const;

/** A CIDR for TRUSTED_NETWORKS: at most a /8 (IPv4) or /32 (IPv6). */
export function parseTrustedNetwork(raw: string): Parsed<Cidr> {
  const cidr = parseCidr(raw);
  if (!cidr.ok) return cidr;
  const min = MIN_TRUSTED_PREFIX[cidr.value.family];
  if (cidr.value.prefix < min) {
    return fail(`${raw} trusts ${cidr.value.prefix === 0 ? 'every' : 'far too many'} IPv${cidr.value.family} address${cidr.value.prefix === 0 ? '' : 'es'}: port 25 would relay for them without AUTH (an open relay); give your own networks, each at most a /${min}`);
  }
  return cidr;
}

export interface HostPort {
  host: string;
  port: number;
  /** true for `[host]`: connect to the host itself, no MX lookup (Postfix relayhost semantics). */
  noMx: boolean;
}

/** `[host]:port`, `host:port`, `[host]` or `host`; port defaults to 25. */
export function parseRelayHost(raw: string): Parsed<HostPort> {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(raw.trim());
  const expected = '[host]:port or host:port, e.g. [smtp.example.com]:587';
  if (!match) return fail(expected);
  const host = (match[1] ?? match[2] ?? '').toLowerCase();
  const port = match[3] === undefined ? 25 : Number(match[3]);
  if (port < 1 || port > 65535) return fail(`${expected}; the port must be 1-65535`);
  if (isIP(host) === 0 && !parseDomain(host).ok && host !== 'localhost') return fail(`${expected}; "${host}" is not a host name or IP address`);
  return ok({ host, port, noMx: match[1] !== undefined });
}

/** Password schemes Dovecot's passwd-file accepts here; PLAIN is allowed but warned about. */
const PASSWORD_SCHEMES = ['ARGON2ID', 'ARGON2I', 'BLF-CRYPT', 'SHA512-CRYPT', 'SHA256-CRYPT', 'PLAIN'] as const;

/** The schemes `relaybox hash-password` makes. */
export const HASH_SCHEMES = ['BLF-CRYPT', 'SHA512-CRYPT', 'ARGON2ID'] as const;
export type HashScheme = (typeof HASH_SCHEMES)[number];

export interface UserEntry {
  address: string;
  scheme: (typeof PASSWORD_SCHEMES)[number];
  hash: string;
}

const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/i;

/** A mailbox address `local@domain`, domain lowercased; no quoted or routed forms. */
export function parseAddress(raw: string): Parsed<string> {
  const at = raw.lastIndexOf('@');
  if (at <= 0) return fail('an address such as alice@example.com');
  const local = raw.slice(0, at);
  const domain = parseDomain(raw.slice(at + 1));
  if (!LOCAL_PART.test(local) || local.length > 64) return fail('an address such as alice@example.com (plain local part)');
  if (!domain.ok) return fail(`an address such as alice@example.com: ${domain.message}`);
  return ok(`${local.toLowerCase()}@${domain.value}`);
}

/** One `address:{SCHEME}hash` entry. Messages never repeat the hash. */
export function parseUserEntry(entry: string): Parsed<UserEntry> {
  const colon = entry.indexOf(':');
  if (colon <= 0) return fail('entries of the form address:{SCHEME}hash, e.g. alice@example.com:{BLF-CRYPT}<hash printed by relaybox hash-password>');
  const address = parseAddress(entry.slice(0, colon));
  if (!address.ok) return fail(`"${entry.slice(0, colon)}" is not ${address.message}`);
  const hash = entry.slice(colon + 1);
  const scheme = /^\{([A-Z0-9-]+)\}/i.exec(hash)?.[1]?.toUpperCase();
  const known = PASSWORD_SCHEMES.find((s) => s === scheme);
  if (!known) {
    const shown = scheme === undefined ? 'no {SCHEME} prefix' : `unknown scheme {${scheme}}`;
    return fail(`${address.value}: ${shown}; valid: ${PASSWORD_SCHEMES.map((s) => `{${s}}`).join(', ')} (make one with: relaybox hash-password)`);
  }
  if (hash.length <= known.length + 2 || /[\s:]/.test(hash)) return fail(`${address.value}: the hash after {${known}} is empty or contains a colon or space`);
  return ok({ address: address.value, scheme: known, hash });
}

/** Users text: entries separated by whitespace or newlines; `#` starts a comment line. */
export function splitUserEntries(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(/\s+/))
    .filter((item) => item.length > 0);
}

export interface AliasEntry {
  /** `alias@domain`, or `@domain` for a catch-all. */
  alias: string;
  domain: string;
  targets: string[];
}

/** One `alias@domain:target[,target...]` or `@domain:target` entry. */
export function parseAliasEntry(entry: string): Parsed<AliasEntry> {
  const expected = 'entries of the form alias@domain:target[,target...] or @domain:target for a catch-all';
  const colon = entry.indexOf(':');
  if (colon <= 0) return fail(expected);
  const left = entry.slice(0, colon);
  const targets = entry.slice(colon + 1).split(',').filter(Boolean);
  if (targets.length === 0) return fail(`${left}: no target; ${expected}`);
  let alias: string;
  let domain: string;
  if (left.startsWith('@')) {
    const parsed = parseDomain(left.slice(1));
    if (!parsed.ok) return fail(`"${left}": ${parsed.message}`);
    domain = parsed.value;
    alias = `@${domain}`;
  } else {
    const parsed = parseAddress(left);
    if (!parsed.ok) return fail(`"${left}" is not ${parsed.message}`);
    alias = parsed.value;
    domain = alias.slice(alias.lastIndexOf('@') + 1);
  }
  const parsedTargets: string[] = [];
  for (const target of targets) {
    const parsed = parseAddress(target);
    if (!parsed.ok) return fail(`${alias}: target "${target}" is not ${parsed.message}`);
    parsedTargets.push(parsed.value);
  }
  return ok({ alias, domain, targets: parsedTargets });
}

/** `2G`, `500M`, `1024K`, `10T` or bytes; Dovecot's quota_rule size syntax. */
export function parseQuota(raw: string): Parsed<string> {
  const match = /^(\d+)([KMGT]?)$/i.exec(raw.trim());
  if (!match || Number(match[1]) === 0) return fail('a size such as 500M or 2G (K, M, G, T suffixes), or empty for no quota');
  return ok(`${match[1]}${(match[2] ?? '').toUpperCase()}`);
}

/** A DKIM selector: one DNS label (no dots, so key file names stay unambiguous). */
export function parseSelector(raw: string): Parsed<string> {
  const selector = raw.trim().toLowerCase();
  return LABEL.test(selector) ? ok(selector) : fail(`"${raw}" is not a selector: letters, digits and hyphens, one label such as relaybox or s2026`);
}

export interface NameServer {
  address: string;
  port: number;
}

/** `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353`. */
export function parseNameServer(raw: string): Parsed<NameServer> {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(raw.trim()) ?? /^()([0-9a-fA-F:]+)()$/.exec(raw.trim());
  const address = match?.[1] || match?.[2] || '';
  const port = match?.[3] ? Number(match[3]) : 53;
  if (!match || isIP(address) === 0 || port < 1 || port > 65535) return fail(`"${raw}" is not a name server: an IP address, optionally with a port (192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:5353)`);
  return ok({ address, port });
}

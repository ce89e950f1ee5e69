// Parsers for the outbound settings' small languages: upstream credentials (which end up as one row
// of a Postfix texthash: table), relay routes and per-user sending limits. Each returns a value or a
// message saying what would be valid; messages never repeat a password.
import { isIP } from 'node:net';
import { parseAddress, parseDomain, parseRelayHost, type HostPort, type Parsed } from './values.ts';

/** A smarthost: where, and whether TLS starts with the first byte (RFC 8314 implicit TLS) or after STARTTLS. */
export interface Smarthost extends HostPort {
  implicitTls: boolean;
}

/** The port RFC 8314 gives implicit-TLS submission; the ports where a server always greets in plaintext. */
const IMPLICIT_TLS_PORT = 465;
const PLAINTEXT_GREETING_PORTS = new Set([25, 587]);
const SMTPS_PREFIX = 'smtps:';

/**
 * `[host]:port` or `host:port`, optionally prefixed `smtps:`: implicit TLS on port 465 and wherever
 * the prefix asks for it (a provider's own implicit-TLS port); STARTTLS everywhere else.
 */
export function parseSmarthost(raw: string): Parsed<Smarthost> {
  const trimmed = raw.trim();
  const prefixed = trimmed.toLowerCase().startsWith(SMTPS_PREFIX);
  const host = parseRelayHost(prefixed ? trimmed.slice(SMTPS_PREFIX.length) : trimmed);
  if (!host.ok) return fail(`${host.message}; prefix smtps: for implicit TLS on a port other than 465, e.g. smtps:[smtp.example.com]:2465`);
  if (prefixed && PLAINTEXT_GREETING_PORTS.has(host.value.port)) {
    return fail(`smtps: asks for TLS from the first byte, but port ${host.value.port} greets in plaintext and offers STARTTLS; drop smtps: (STARTTLS is used and verified the same way) or give the provider's implicit-TLS port, usually 465`);
  }
  return ok({ ...host.value, implicitTls: prefixed || host.value.port === IMPLICIT_TLS_PORT });
}


/** Postfix's smtp_mx_address_limit (5): hops past it would never be tried. */
export const MAX_SMARTHOSTS = 5;

/** The text relayhost and the maps keyed by a nexthop use: `[host]:port` or `host:port`. */
export const hopKey = (hop: HostPort): string => `${hop.noMx ? `[${hop.host}]` : hop.host}:${hop.port}`;

/**
 * An ordered failover list of smarthosts, separated by commas or whitespace (Postfix 3.5+ tries them
 * in order when one does not answer, fails TLS or answers 4xx). One TLS mode for all: Postfix reaches
 * every hop of one list through one transport, and implicit TLS is a transport setting.
 */
export function parseSmarthostList(raw: string): Parsed<Smarthost[]> {
  const entries = raw.split(/[\s,]+/).filter((entry) => entry !== '');
  if (entries.length > MAX_SMARTHOSTS) return fail(`${entries.length} smarthosts; at most ${MAX_SMARTHOSTS} (Postfix tries no more addresses per delivery)`);
  const hops: Smarthost[] = [];
  for (const [index, entry] of entries.entries()) {
    const hop = parseSmarthost(entry);
    const which = entries.length > 1 ? `smarthost ${index + 1} ("${entry}"): ` : '';
    if (!hop.ok) return fail(`${which}${hop.message}`);
    const duplicate = hops.findIndex((known) => hopKey(known) === hopKey(hop.value));
    if (duplicate >= 0) return fail(`${which}the same as smarthost ${duplicate + 1}; list each smarthost once`);
    hops.push(hop.value);
  }
  const modes = new Set(hops.map((hop) => hop.implicitTls));
  if (modes.size > 1) {
    const describe = (hop: Smarthost, index: number) => `${index + 1} ${hopKey(hop)} ${hop.implicitTls ? 'implicit TLS' : 'STARTTLS'}`;
    return fail(`mixes implicit TLS (465 or smtps:) and STARTTLS smarthosts (${hops.map(describe).join(', ')}); Postfix tries every hop of one list through one transport, so use one mode for all (most providers offer both 465 and 587)`);
  }
  return ok(hops);
}


const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/**
 * Why a user name cannot go into the password table, or undefined. Postfix splits the row's value at
 * the first ':' into user and password, and a texthash: row at the first whitespace.
 */
export function usernameProblem(username: string): string | undefined {
  if (username === '') return 'empty; give the user name the smarthost expects';
  if (username.includes(':')) return 'contains ":"; Postfix would split the user name there and send the rest as part of the password';
  if (/\s/.test(username)) return 'contains whitespace; Postfix would cut the user name there';
  if (username.includes('\uFFFD')) return 'is not valid UTF-8; Postfix ignores such a table row';
  return undefined;
}

/** Why a password cannot go into the password table, or undefined (inner spaces, ':', '#', '$' are fine). */
export function passwordProblem(password: string): string | undefined {
  if (password === '') return 'empty; give the password the smarthost expects';
  if (/^\s|\s$/.test(password)) return 'starts or ends with whitespace, which Postfix would silently remove; remove it (or quote nothing: the value is taken literally)';
  if (password.includes('\t')) return 'contains a tab; only printable characters and inner spaces are allowed';
  if (password.includes('\uFFFD')) return 'is not valid UTF-8; Postfix ignores such a table row';
  return undefined;
}

/** A route's sender key: `@domain` (every address of the domain) or `local@domain`. */
export function parseSenderKey(raw: string): Parsed<string> {
  if (raw.startsWith('@')) {
    const domain = parseDomain(raw.slice(1));
    return domain.ok ? ok(`@${domain.value}`) : fail(`"${raw}": ${domain.message}`);
  }
  const address = parseAddress(raw);
  return address.ok ? address : fail(`"${raw}" is neither @domain nor ${address.message}`);
}

export interface Route extends Smarthost {
  sender: string;
  /** The smarthosts after the first (above), tried in order when it does not take the mail. */
  fallbacks?: Smarthost[];
}

/** A route's smarthosts in failover order. */
export const routeHops = (route: Route): Smarthost[] => [route, ...(route.fallbacks ?? [])].map(({ host, port, noMx, implicitTls }) => ({ host, port, noMx, implicitTls }));

const ROUTE_FORMAT = 'entries sender=[host]:port (smtps:[host]:port for implicit TLS on a port other than 465; a failover list as sender=[a]:587,[b]:587), the sender as @domain or user@domain, e.g. @example.org=[smtp.provider.example]:587';

/** One `sender=[host]:port` entry of RELAY_ROUTES. */
export function parseRoute(entry: string): Parsed<Route> {
  const equals = entry.indexOf('=');
  if (equals <= 0) return fail(ROUTE_FORMAT);
  const sender = parseSenderKey(entry.slice(0, equals));
  if (!sender.ok) return fail(`${sender.message}; ${ROUTE_FORMAT}`);
  const hops = parseSmarthostList(entry.slice(equals + 1));
  if (!hops.ok) return fail(`${sender.value}: ${hops.message}`);
  const [first, ...fallbacks] = hops.value;
  if (!first) return fail(ROUTE_FORMAT);
  return ok({ sender: sender.value, ...first, ...(fallbacks.length > 0 ? { fallbacks } : {}) });
}

export interface Credentials {
  username: string;
  password: string;
}

/** One line `sender username:password` of RELAY_ROUTE_CREDENTIALS (the password may contain spaces). */
export function parseRouteCredentials(line: string): Parsed<{ sender: string } & Credentials> {
  const format = 'lines of the form "sender username:password", the sender as in RELAY_ROUTES';
  // Not trimmed at the end: a trailing space belongs to the password, and is refused below.
  const match = /^(\S+)[ \t]+([^:]*):(.*)$/.exec(line.replace(/\r$/, '').trimStart());
  if (!match) return fail(format);
  const sender = parseSenderKey(match[1]!);
  if (!sender.ok) return fail(`${sender.message}; ${format}`);
  const [, , username = '', password = ''] = match;
  const userProblem = usernameProblem(username);
  if (userProblem) return fail(`${sender.value}: the user name ${userProblem}`);
  const problem = passwordProblem(password);
  if (problem) return fail(`${sender.value}: the password ${problem}`);
  return ok({ sender: sender.value, username, password });
}

/** The name a verified smarthost's certificate must carry: a host name or an IP address. */
export function parseTlsName(raw: string): Parsed<string> {
  const name = raw.trim().toLowerCase();
  if (isIP(name) !== 0 || parseDomain(name).ok) return ok(name);
  return fail('a host name such as smtp.provider.example (or an IP address) that the smarthost certificate names');
}

export interface SendLimit {
  messagesPerHour?: number;
  recipientsPerDay?: number;
}

/** One `user@domain:N/h[:M/d]` entry of SEND_LIMITS (either part may be left out; 0 = no limit). */
export function parseSendLimit(entry: string): Parsed<{ user: string } & SendLimit> {
  const format = 'entries user@domain:N/h:M/d (messages per hour, recipients per day; either part may be left out, 0 = no limit), e.g. alice@example.com:200/h:5000/d';
  const [user = '', ...parts] = entry.split(':');
  const address = parseAddress(user);
  if (!address.ok || parts.length === 0 || parts.length > 2) return fail(format);
  const limit: SendLimit = {};
  for (const part of parts) {
    const match = /^(\d{1,7})\/([hd])$/.exec(part);
    if (!match) return fail(`${address.value}: "${part}" is not N/h or N/d; ${format}`);
    const key = match[2] === 'h' ? 'messagesPerHour' : 'recipientsPerDay';
    if (limit[key] !== undefined) return fail(`${address.value}: "${part}" repeats a limit; ${format}`);
    limit[key] = Number(match[1]);
  }
  return ok({ user: address.value, ...limit });
}

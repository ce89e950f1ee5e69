// The header From: rule on the submission ports: every address in the message's one From: header
// must be one the login may send as, by the same table as the envelope (render/postfix/senders.ts).
// OpenDKIM signs by the header From:, so without this any user could have mail signed for any
// domain relaybox signs for. Pure: the milter (header-from-milter.ts) feeds it what Postfix sends.

/** RFC 5322 specials that end an atom (`.` is kept inside atoms: obs-phrase and dot-atoms). */
const SPECIALS = new Set(['<', '>', '@', ',', ';', ':']);

type Token = { kind: 'special'; value: string } | { kind: 'word'; value: string; quoted: boolean } | { kind: 'literal'; value: string };

/** Tokens of a header value, comments dropped; undefined when a quote, comment or literal is unclosed. */
export function tokenize(value: string): Token[] | undefined {
  const text = value.replace(/\r?\n(?=[ \t])/g, '');
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i += 1;
    } else if (c === '(') {
      let depth = 0;
      for (; i < text.length; i += 1) {
        if (text[i] === '\\') i += 1;
        else if (text[i] === '(') depth += 1;
        else if (text[i] === ')' && --depth === 0) break;
      }
      if (depth !== 0) return undefined;
      i += 1;
    } else if (c === '"') {
      let word = '';
      for (i += 1; i < text.length && text[i] !== '"'; i += 1) word += text[i] === '\\' ? text[++i] ?? '' : text[i];
      if (i >= text.length) return undefined;
      tokens.push({ kind: 'word', value: word, quoted: true });
      i += 1;
    } else if (c === '[') {
      const end = text.indexOf(']', i);
      if (end < 0) return undefined;
      tokens.push({ kind: 'literal', value: text.slice(i, end + 1) });
      i = end + 1;
    } else if (SPECIALS.has(c)) {
      tokens.push({ kind: 'special', value: c });
      i += 1;
    } else {
      let word = '';
      while (i < text.length && !/[\s()"[\]<>@,;:]/.test(text[i]!)) word += text[i++];
      tokens.push({ kind: 'word', value: word, quoted: false });
    }
  }
  return tokens;
}

const isSpecial = (token: Token | undefined, value: string) => token?.kind === 'special' && token.value === value;

/** local-part@domain from tokens, lower-cased; undefined when they are not exactly one address. */
function addrSpec(tokens: Token[]): string | undefined {
  const at = tokens.findIndex((t) => isSpecial(t, '@'));
  // One atom or one quoted string, `@`, one domain: nothing a reader could see otherwise.
  if (tokens.length !== 3 || !isSpecial(tokens[1], '@')) return undefined;
  const [local, , domain] = tokens as [Token, Token, Token];
  if (local.kind !== 'word' || domain.kind === 'special') return undefined;
  if (domain.kind === 'word' && (domain.quoted || !/^[^.]+(\.[^.]+)*$/.test(domain.value))) return undefined;
  return `${local.value}@${domain.value}`.toLowerCase();
}

/** One mailbox: `addr-spec`, or `[display name] <addr-spec>`. */
function mailbox(tokens: Token[]): string | undefined {
  const open = tokens.findIndex((t) => isSpecial(t, '<'));
  if (open < 0) return addrSpec(tokens);
  const close = tokens.findIndex((t) => isSpecial(t, '>'));
  // The display name is words and dots only (an `@` there is a second address in disguise).
  if (close !== tokens.length - 1 || tokens.slice(0, open).some((t) => t.kind !== 'word')) return undefined;
  return addrSpec(tokens.slice(open + 1, close));
}

/**
 * Every address in a From: header value (mailboxes, groups, display names, comments, quoted local
 * parts), lower-cased; undefined when the value cannot be read as an address list.
 */
export function fromAddresses(value: string): string[] | undefined {
  const tokens = tokenize(value);
  if (!tokens) return undefined;
  const addresses: string[] = [];
  let current: Token[] = [];
  let inGroup = false;
  let inAngle = false;
  const flush = (): boolean => {
    const part = current;
    current = [];
    if (part.length === 0) return true;
    const address = mailbox(part);
    if (address) addresses.push(address);
    return address !== undefined;
  };
  for (const token of tokens) {
    if (isSpecial(token, '<')) inAngle = true;
    if (isSpecial(token, '>')) inAngle = false;
    if (inAngle || token.kind !== 'special' || ['<', '>', '@'].includes(token.value)) {
      current.push(token);
    } else if (token.value === ',') {
      if (!flush()) return undefined;
    } else if (token.value === ':') {
      // A group's name: words only, and groups do not nest.
      if (inGroup || current.some((t) => t.kind !== 'word')) return undefined;
      current = [];
      inGroup = true;
    } else if (token.value === ';') {
      if (!inGroup || !flush()) return undefined;
      inGroup = false;
    }
  }
  if (inGroup || inAngle) return undefined;
  return flush() ? addresses : undefined;
}

/** Address → logins, as render/postfix/senders.ts builds it. */
export type SendAsTable = ReadonlyMap<string, readonly string[]>;

/** Postfix's lookup of smtpd_sender_login_maps: the address, then without its +extension; logins compared case-insensitively. */
export function maySendAs(table: SendAsTable, login: string, address: string): boolean {
  const lower = address.toLowerCase();
  const at = lower.lastIndexOf('@');
  const plus = lower.indexOf('+');
  const owners = table.get(lower) ?? (plus > 0 && plus < at ? table.get(`${lower.slice(0, plus)}${lower.slice(at)}`) : undefined) ?? [];
  return owners.some((owner) => owner.toLowerCase() === login.toLowerCase());
}

export type HeaderFromVerdict = { ok: true } | { ok: false; reason: string; addresses: string[] };

export const REFUSAL_PREFIX = '550 5.7.1 ';

/**
 * The verdict on one message from an authenticated login: `fromHeaders` are the values of every
 * From: header, `envelope` the MAIL FROM address ('' for <>). Without a From: header, Postfix adds
 * one from the envelope sender (which reject_sender_login_mismatch checked), unless it is <>.
 */
export function judgeHeaderFrom(table: SendAsTable, login: string, envelope: string, fromHeaders: string[]): HeaderFromVerdict {
  if (fromHeaders.length > 1) return { ok: false, reason: `the message has ${fromHeaders.length} From: headers; one is allowed`, addresses: [] };
  if (fromHeaders.length === 0) return envelope ? { ok: true } : { ok: false, reason: 'the message has no From: header', addresses: [] };
  const addresses = fromAddresses(fromHeaders[0]!);
  if (!addresses) return { ok: false, reason: 'the From: header cannot be read as addresses', addresses: [] };
  if (addresses.length === 0) return { ok: false, reason: 'the From: header names no address', addresses: [] };
  const foreign = addresses.filter((address) => !maySendAs(table, login, address));
  if (foreign.length > 0) return { ok: false, reason: `${login} may not send as ${foreign.join(', ')} (header From:)`, addresses: foreign };
  return { ok: true };
}

// The Sender Rewriting Scheme (SRS0, the "shortcut" form of libsrs2 and postsrsd): a forwarded
// message's envelope sender alice@origin.example becomes SRS0=HHHH=TT=origin.example=alice@<our host>,
// so the receiver checks SPF against us, and a bounce to that address is accepted only with a valid
// hash and a recent timestamp, then sent back to alice@origin.example. HHHH is HMAC-SHA1 over
// timestamp, domain and local part (lowercased), base64, 4 characters; TT the day number modulo
// 1024 in base32. A sender another forwarder rewrote becomes SRS1 (see forward). The same secret in
// postsrsd reverses what this makes, and the reverse.
import { createHmac, timingSafeEqual } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const HASH_LENGTH = 4;
/** How long a bounce may take to come back (postsrsd's and libsrs2's default). */
const MAX_AGE_DAYS = 21;
const DAY_MS = 86_400_000;
const STAMP_RANGE = BASE32.length * BASE32.length;

export interface SrsOptions {
  /** The HMAC key, as postsrsd reads it from its secrets file (one line). */
  secret: string;
  /** The domain of the rewritten addresses (MAIL_HOSTNAME). */
  domain: string;
}

function stamp(now: number): string {
  const day = Math.floor(now / DAY_MS) % STAMP_RANGE;
  return `${BASE32[day >> 5]}${BASE32[day & 31]}`;
}

/** Days since a stamp was made, or undefined when it is not a stamp. */
function stampAge(text: string, now: number): number | undefined {
  if (text.length !== 2) return undefined;
  const [high, low] = [BASE32.indexOf(text[0]!.toUpperCase()), BASE32.indexOf(text[1]!.toUpperCase())];
  if (high < 0 || low < 0) return undefined;
  const today = Math.floor(now / DAY_MS) % STAMP_RANGE;
  return (today - ((high << 5) | low) + STAMP_RANGE) % STAMP_RANGE;
}

function hash(secret: string, parts: string[]): string {
  const hmac = createHmac('sha1', secret);
  for (const part of parts) hmac.update(part.toLowerCase());
  return hmac.digest('base64').slice(0, HASH_LENGTH);
}

/** Case-insensitive and constant-time: some MTAs lowercase the whole address. */
function sameHash(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a.toLowerCase()), Buffer.from(b.toLowerCase())];
  return x.length === y.length && timingSafeEqual(x, y);
}

function split(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

export class Srs {
  private readonly secret: string;
  readonly domain: string;

  constructor(options: SrsOptions) {
    this.secret = options.secret;
    this.domain = options.domain.toLowerCase();
  }

  /**
   * The SRS address for a sender (local@domain), at our domain: SRS0, or for a sender that another
   * forwarder already rewrote, SRS1 (libsrs2's shortcut): SRS1=HHHH=firsthop==<its SRS0 tail>, so
   * the address does not grow with every hop and a bounce goes back to the first forwarder.
   */
  forward(sender: string, now = Date.now()): string | undefined {
    const parts = split(sender);
    if (!parts) return undefined;
    const srs0 = /^SRS0([=+-].*)$/i.exec(parts.local);
    if (srs0) return this.srs1(parts.domain, srs0[1]!);
    const srs1 = /^SRS1[=+-][^=]+=([^=]+)=(.*)$/i.exec(parts.local);
    if (srs1) return this.srs1(srs1[1]!, srs1[2]!);
    const time = stamp(now);
    return `SRS0=${hash(this.secret, [time, parts.domain, parts.local])}=${time}=${parts.domain}=${parts.local}@${this.domain}`;
  }

  private srs1(firstHop: string, tail: string): string {
    return `SRS1=${hash(this.secret, [firstHop, tail])}=${firstHop}=${tail}@${this.domain}`;
  }

  /** Whether an address is one of ours (made by forward, valid or not). */
  isOurs(address: string): boolean {
    const parts = split(address);
    return Boolean(parts && parts.domain.toLowerCase() === this.domain && /^SRS[01][=+-]/i.test(parts.local));
  }

  /** The original sender behind one of our SRS0 addresses (the first forwarder's SRS0 address behind an SRS1 one); undefined when forged, damaged or too old. */
  reverse(address: string, now = Date.now()): string | undefined {
    const parts = split(address);
    if (!parts || parts.domain.toLowerCase() !== this.domain) return undefined;
    const srs1 = /^SRS1[=+-]([^=]+)=([^=]+)=(.*)$/i.exec(parts.local);
    if (srs1) {
      const [, given = '', firstHop = '', tail = ''] = srs1;
      return sameHash(given, hash(this.secret, [firstHop, tail])) ? `SRS0${tail}@${firstHop}` : undefined;
    }
    const match = /^SRS0[=+-]([^=]+)=([^=]{2})=([^=]+)=(.+)$/i.exec(parts.local);
    if (!match) return undefined;
    const [, given = '', time = '', domain = '', local = ''] = match;
    const age = stampAge(time, now);
    if (age === undefined || age > MAX_AGE_DAYS) return undefined;
    if (!sameHash(given, hash(this.secret, [time, domain, local]))) return undefined;
    return `${local}@${domain}`;
  }
}

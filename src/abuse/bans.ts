// Brute-force bans: failed authentications are counted per client address from the daemons' own log
// lines; past the threshold the address is banned and `apply` puts the list in force (the
// composition root writes Postfix's access map and reloads Postfix: refused at connect on every
// SMTP port; Dovecot asks `isBanned` through its auth policy: refused at IMAP login). No firewall,
// so no NET_ADMIN capability is needed. Bans are kept in the store and restored at start with the
// time they have left. Loopback, the probe source, AUTH_BAN_EXEMPT and the gateway are never banned.
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import { plainAddress, type AddressSet } from './addresses.ts';
import type { AbuseStore } from './store.ts';

type BanSettings = Config['auth']['ban'];

// Postfix: "warning: unknown[192.0.2.7]: SASL PLAIN authentication failed: ..."
const POSTFIX_FAILURE = /^warning: [^\s[]*\[([0-9a-fA-F.:]+)\]: SASL \S+ authentication failed/;
// Dovecot: "Disconnected: ... (auth failed, 3 attempts in 6 secs): user=<x>, method=PLAIN, rip=192.0.2.7, ..."
const DOVECOT_FAILURE = /\(auth failed, (\d+) attempts? in .*\brip=([0-9a-fA-F.:]+)/;

/** Which client address failed how many times, from one daemon log line. */
export function authFailure(line: DaemonLogLine): { address: string; count: number } | undefined {
  const postfix = POSTFIX_FAILURE.exec(line.msg);
  if (postfix) return { address: postfix[1]!, count: 1 };
  const dovecot = DOVECOT_FAILURE.exec(line.msg);
  if (dovecot) return { address: dovecot[2]!, count: Number(dovecot[1]) };
  return undefined;
}

export interface BanOptions {
  /** Where bans outlive a restart. */
  store?: AbuseStore;
  /** Addresses never banned (loopback, probe source, AUTH_BAN_EXEMPT). */
  exempt?: AddressSet;
  /** The container's default gateway: every client may share it, so it is never banned either. */
  isGateway?: (address: string) => boolean;
}

export class AuthBans {
  private readonly failures = new Map<string, number[]>();
  private readonly banned = new Map<string, number>();
  private readonly settings: BanSettings;
  private readonly putInForce: (addresses: string[]) => Promise<void>;
  private readonly log: Logger;
  private readonly options: BanOptions;
  private readonly spared = new Set<string>();
  /** Bans known to be in the store: one of these gone from a shared store was lifted on another replica. */
  private readonly stored = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  /** `putInForce` makes the daemons refuse exactly the given addresses. */
  constructor(settings: BanSettings, putInForce: (addresses: string[]) => Promise<void>, log: Logger, options: BanOptions = {}) {
    this.settings = settings;
    this.putInForce = putInForce;
    this.log = log;
    this.options = options;
  }

  /** The bans an earlier run left in the store that have time left; the caller puts them in force. */
  async restore(now = Date.now()): Promise<Array<{ address: string; seconds: number }>> {
    const stored = (await this.options.store?.list('bans')) ?? [];
    for (const ban of stored) {
      if (ban.until <= now || this.exempt(ban.id)) continue;
      this.banned.set(ban.id, ban.until);
      this.stored.add(ban.id);
    }
    return [...this.banned].map(([address, until]) => ({ address, seconds: Math.ceil((until - now) / 1000) }));
  }

  /**
   * Bans other replicas put in a shared store since the last look, put in force here too (a Postfix
   * reload); rejects when the store cannot be read.
   */
  async learn(now = Date.now()): Promise<string[]> {
    const stored = (await this.options.store?.list('bans')) ?? [];
    const learned = stored.filter((ban) => ban.until > now && !this.exempt(ban.id) && (this.banned.get(ban.id) ?? 0) < ban.until);
    const present = new Set(stored.map((ban) => ban.id));
    const lifted = [...this.stored].filter((address) => !present.has(address) && this.banned.has(address));
    for (const address of [...this.stored]) if (!present.has(address)) this.stored.delete(address);
    if (learned.length === 0 && lifted.length === 0) return [];
    for (const ban of learned) {
      this.banned.set(ban.id, ban.until);
      this.stored.add(ban.id);
      this.failures.delete(ban.id);
    }
    for (const address of lifted) this.banned.delete(address);
    await this.apply();
    for (const address of lifted) this.log.info({ event: 'ban_lifted_elsewhere', address }, `ban on ${address} lifted (by an operator on another replica)`);
    for (const ban of learned) {
      const seconds = Math.ceil((ban.until - now) / 1000);
      this.log.warn({ event: 'ban_learned', address: ban.id, seconds }, `banned ${ban.id} for ${seconds} s: another replica banned it (shared store)`);
    }
    return learned.map((ban) => ban.id);
  }

  isBanned(address: string, now = Date.now()): boolean {
    const until = this.banned.get(plainAddress(address));
    return until !== undefined && until > now;
  }

  private exempt(address: string): boolean {
    return this.options.exempt?.has(address) === true || this.options.isGateway?.(address) === true;
  }

  /** Logged once per address: why a failing address is not banned. */
  private spare(address: string): void {
    if (this.spared.has(address)) return;
    this.spared.add(address);
    const gateway = this.options.isGateway?.(address) === true;
    this.log.warn(
      { event: 'ban_skipped', address, reason: gateway ? 'gateway' : 'exempt' },
      gateway
        ? `not banning ${address}: it is this container's default gateway, so clients seem to arrive through Docker's userland proxy and a ban would lock everyone out (publish ports with NAT, userland-proxy: false, or network_mode: host)`
        : `not banning ${address} despite failed authentications: loopback, the probe source and AUTH_BAN_EXEMPT are never banned`,
    );
  }

  /** Starts expiring bans. */
  start(): void {
    this.timer = setInterval(() => void this.expire(Date.now()), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get active(): string[] {
    return [...this.banned.keys()];
  }

  /** Every ban in force here, with when it ends (ms since the epoch). */
  entries(): Array<{ address: string; until: number }> {
    return [...this.banned].map(([address, until]) => ({ address, until }));
  }

  /** Lifts a ban now (an operator): false when the address is not banned. In force once this resolves. */
  async lift(address: string): Promise<boolean> {
    const plain = plainAddress(address);
    if (!this.banned.delete(plain)) return false;
    this.failures.delete(plain);
    this.stored.delete(plain);
    await this.keep(() => this.options.store?.remove('bans', plain));
    await this.apply();
    return true;
  }

  /** Bans an address by hand for `seconds`; refused (false) for an address that is never banned. */
  async banNow(address: string, seconds: number, now = Date.now()): Promise<boolean> {
    const plain = plainAddress(address);
    if (this.exempt(plain)) return false;
    const until = now + seconds * 1000;
    this.banned.set(plain, until);
    this.failures.delete(plain);
    await this.keep(() => this.options.store?.put('bans', { id: plain, until }));
    this.stored.add(plain);
    await this.apply();
    return true;
  }

  observe(line: DaemonLogLine, now = Date.now()): void {
    const found = authFailure(line);
    if (found) this.failed(found.address, found.count, now);
  }

  /** Failed authentications of one address (a daemon's log line, or a failed admin login). */
  failed(address: string, count = 1, now = Date.now()): void {
    const failure = { address: plainAddress(address), count };
    if (this.settings.threshold === 0 || isIP(failure.address) === 0 || this.banned.has(failure.address)) return;
    if (this.exempt(failure.address)) {
      this.spare(failure.address);
      return;
    }
    const windowStart = now - this.settings.windowSeconds * 1000;
    const times = (this.failures.get(failure.address) ?? []).filter((t) => t > windowStart);
    for (let i = 0; i < failure.count; i++) times.push(now);
    this.failures.set(failure.address, times);
    if (times.length >= this.settings.threshold) {
      this.failures.delete(failure.address);
      const until = now + this.settings.durationSeconds * 1000;
      this.banned.set(failure.address, until);
      // Logged once Postfix has reloaded the map, i.e. when the ban is in force.
      void this.keep(() => this.options.store?.put('bans', { id: failure.address, until }))
        .then(() => void this.stored.add(failure.address))
        .then(() => this.apply())
        .then(() =>
          this.log.warn({ event: 'ban', address: failure.address, failures: times.length, seconds: this.settings.durationSeconds }, `banned ${failure.address} for ${this.settings.durationSeconds} s after ${times.length} failed authentications`),
        );
    }
  }

  async expire(now: number): Promise<void> {
    const expired = [...this.banned].filter(([, until]) => until <= now).map(([address]) => address);
    for (const address of expired) {
      this.banned.delete(address);
      this.stored.delete(address);
      await this.keep(() => this.options.store?.remove('bans', address));
    }
    for (const [address, times] of this.failures) {
      if (times.every((t) => t <= now - this.settings.windowSeconds * 1000)) this.failures.delete(address);
    }
    if (expired.length === 0) return;
    await this.apply();
    // Logged once Postfix has reloaded the map, i.e. when the address is accepted again.
    for (const address of expired) this.log.info({ event: 'unban', address }, `ban on ${address} expired`);
  }

  /** A store that cannot be written costs durability, never the ban itself. */
  private async keep(write: () => Promise<void> | undefined): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.log.error({ event: 'ban_store_failed', error: (error as Error).message }, `could not store the ban list: ${(error as Error).message}`);
    }
  }

  private async apply(): Promise<void> {
    try {
      await this.putInForce(this.active);
    } catch (error) {
      this.log.error({ event: 'ban_reload_failed', error: (error as Error).message }, `putting the ban list in force failed: ${(error as Error).message}`);
    }
  }
}

// Brute-force bans: failed authentications are counted per client address from the daemons' own log
// lines; past the threshold the address is banned and `apply` puts the list in force (the
// composition root writes Postfix's access map and reloads Postfix: refused at connect on every
// SMTP port). No firewall, so no NET_ADMIN capability is needed.
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';

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

export class AuthBans {
  private readonly failures = new Map<string, number[]>();
  private readonly banned = new Map<string, number>();
  private readonly settings: BanSettings;
  private readonly putInForce: (addresses: string[]) => Promise<void>;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;

  /** `putInForce` makes the daemons refuse exactly the given addresses. */
  constructor(settings: BanSettings, putInForce: (addresses: string[]) => Promise<void>, log: Logger) {
    this.settings = settings;
    this.putInForce = putInForce;
    this.log = log;
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

  observe(line: DaemonLogLine, now = Date.now()): void {
    const failure = authFailure(line);
    if (!failure || this.settings.threshold === 0 || isIP(failure.address) === 0 || this.banned.has(failure.address)) return;
    const windowStart = now - this.settings.windowSeconds * 1000;
    const times = (this.failures.get(failure.address) ?? []).filter((t) => t > windowStart);
    for (let i = 0; i < failure.count; i++) times.push(now);
    this.failures.set(failure.address, times);
    if (times.length >= this.settings.threshold) {
      this.failures.delete(failure.address);
      this.banned.set(failure.address, now + this.settings.durationSeconds * 1000);
      // Logged once Postfix has reloaded the map, i.e. when the ban is in force.
      void this.apply().then(() =>
        this.log.warn({ event: 'ban', address: failure.address, failures: times.length, seconds: this.settings.durationSeconds }, `banned ${failure.address} for ${this.settings.durationSeconds} s after ${times.length} failed authentications`),
      );
    }
  }

  async expire(now: number): Promise<void> {
    const expired = [...this.banned].filter(([, until]) => until <= now).map(([address]) => address);
    for (const address of expired) this.banned.delete(address);
    for (const [address, times] of this.failures) {
      if (times.every((t) => t <= now - this.settings.windowSeconds * 1000)) this.failures.delete(address);
    }
    if (expired.length === 0) return;
    await this.apply();
    // Logged once Postfix has reloaded the map, i.e. when the address is accepted again.
    for (const address of expired) this.log.info({ event: 'unban', address }, `ban on ${address} expired`);
  }

  private async apply(): Promise<void> {
    try {
      await this.putInForce(this.active);
    } catch (error) {
      this.log.error({ event: 'ban_reload_failed', error: (error as Error).message }, `putting the ban list in force failed: ${(error as Error).message}`);
    }
  }
}

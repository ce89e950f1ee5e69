// Bans: the brute-force bans in force (shared through Redis with every replica when REDIS_URL is
// set), lifted or made by hand. A ban refuses the address at connect on every SMTP port and at IMAP
// login (abuse/bans.ts), so every ban lists the same ports.
import { isIP } from 'node:net';
import type { AbuseDefences } from '../abuse/defences.ts';
import type { Config } from '../config/schema.ts';
import { LISTENERS } from '../listeners.ts';
import type { Actor, Audit } from './audit.ts';
import { failed, notFound, parseDuration, usage } from './errors.ts';

export interface BanView {
  address: string;
  until: number;
  remainingSeconds: number;
  /** The listeners that refuse it. */
  ports: string[];
}

const MAX_BAN_SECONDS = 365 * 86400;

export class BanOperations {
  private readonly defences: AbuseDefences;
  private readonly config: () => Config;
  private readonly audit: Audit;

  constructor(defences: AbuseDefences, config: () => Config, audit: Audit) {
    this.defences = defences;
    this.config = config;
    this.audit = audit;
  }

  private ports(): string[] {
    const ports = this.config().ports as Record<string, number>;
    return LISTENERS.filter((l) => (ports[l.name] ?? 0) > 0 && (l.protocol === 'smtp' || l.protocol === 'imap')).map((l) => `${l.name}/${ports[l.name]}`);
  }

  list(now = Date.now()): BanView[] {
    const ports = this.ports();
    return this.defences.bans
      .entries()
      .filter((ban) => ban.until > now)
      .sort((a, b) => a.until - b.until)
      .map((ban) => ({ ...ban, remainingSeconds: Math.ceil((ban.until - now) / 1000), ports }));
  }

  private address(raw: string): string {
    const address = raw.trim();
    if (isIP(address) === 0) throw usage(`"${raw}" is not an IP address (bans are per client address, e.g. 192.0.2.7 or 2001:db8::7)`);
    return address;
  }

  async lift(raw: string, actor: Actor): Promise<{ address: string }> {
    const address = this.address(raw);
    if (!(await this.defences.bans.lift(address))) throw notFound(`${address} is not banned (see \`relaybox bans list\`)`);
    this.audit.record(actor, 'ban_lift', { address }, `lifted the ban on ${address}`);
    return { address };
  }

  async ban(raw: string, duration: string, reason: string, actor: Actor): Promise<BanView> {
    const address = this.address(raw);
    const seconds = parseDuration('duration', duration);
    if (seconds < 1 || seconds > MAX_BAN_SECONDS) throw usage(`duration: between 1 s and 365 d, not ${duration}`);
    if (!(await this.defences.bans.banNow(address, seconds))) {
      throw failed(`${address} is never banned: loopback, the probe source, AUTH_BAN_EXEMPT and this container's gateway are exempt`);
    }
    this.audit.record(actor, 'ban_add', { address, seconds, reason: reason.slice(0, 200) }, `banned ${address} for ${seconds} s${reason ? ` (${reason.slice(0, 200)})` : ''}`);
    return this.list().find((ban) => ban.address === address) ?? { address, until: Date.now() + seconds * 1000, remainingSeconds: seconds, ports: this.ports() };
  }
}

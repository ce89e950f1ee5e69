// Per-user sending limits, decided when a message reaches DATA (recipients known, body not yet sent):
// messages per hour and recipients per day, each over a sliding window (this bucket plus the
// previous one, weighted by how much of it still overlaps). A user whose mail keeps being refused
// past SEND_SUSPEND_THRESHOLD is suspended: the mail they queued lately goes on hold and they may
// send nothing more until their password hash changes. Counters and suspensions live in the store.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { UserEntry } from '../config/values.ts';
import type { AbuseStore } from './store.ts';

export type SendingSettings = Config['sending'];
export type LimitName = 'messages_per_hour' | 'recipients_per_day';

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
/** Suspensions last until the password changes; the store wants an expiry all the same. */
const SUSPENSION_MS = 10 * 365 * DAY_MS;
const RECENT_PER_USER = 10_000;

export interface SendRequest {
  user: string;
  recipients: number;
  queueId: string;
}

export type SendDecision =
  | { verdict: 'accept' }
  | { verdict: 'limited'; limit: LimitName; max: number; reply: string }
  | { verdict: 'suspended'; reply: string };

export interface SendLimitHooks {
  log: Logger;
  /** Puts the given queue ids on hold (postsuper -h); resolves with how many were held. */
  hold: (queueIds: string[]) => Promise<number>;
  /** Called for every message refused by a limit (metrics). */
  limited?: (limit: LimitName) => void;
  now?: () => number;
}

/** What a suspension remembers of the password hash it was made under (never the hash itself). */
export function hashFingerprint(hash: string): string {
  return createHash('sha256').update(hash).digest('hex').slice(0, 16);
}

const SUSPENDED_REPLY = '550 5.7.1 Sending is suspended for this account after too many messages over its limits; contact your administrator';

export class SendLimits {
  private settings: SendingSettings;
  private fingerprints = new Map<string, string>();
  private readonly store: AbuseStore;
  private readonly hooks: SendLimitHooks;
  private readonly now: () => number;
  /** Queue ids each user was let through with lately (for holding them at a suspension). */
  private readonly recent = new Map<string, Array<{ id: string; at: number }>>();
  private serial: Promise<unknown> = Promise.resolve();

  constructor(settings: SendingSettings, users: UserEntry[], store: AbuseStore, hooks: SendLimitHooks) {
    this.settings = settings;
    this.store = store;
    this.hooks = hooks;
    this.now = hooks.now ?? Date.now;
    this.fingerprints = new Map(users.map((user) => [user.address, hashFingerprint(user.hash)]));
  }

  /** New settings and users (a reload); a suspended user whose password hash changed is let go. */
  async configure(settings: SendingSettings, users: UserEntry[]): Promise<void> {
    this.settings = settings;
    this.fingerprints = new Map(users.map((user) => [user.address, hashFingerprint(user.hash)]));
    for (const entry of await this.store.list('suspensions')) await this.liftIfRekeyed(entry.id, entry.note);
  }

  async suspendedUsers(): Promise<string[]> {
    return (await this.store.list('suspensions')).map((entry) => entry.id);
  }

  /** One decision at a time, so two sessions of one user cannot both take the last message. */
  decide(request: SendRequest): Promise<SendDecision> {
    const next = this.serial.then(() => this.decideNow({ ...request, user: request.user.toLowerCase() }));
    this.serial = next.catch(() => undefined);
    // Answered once the counts it made are durable; outside the chain, so one write serves many answers.
    return next.then(async (decision) => {
      await this.store.flush();
      return decision;
    });
  }

  private limitsOf(user: string): { messagesPerHour: number; recipientsPerDay: number } {
    const override = this.settings.overrides.find((o) => o.user === user);
    return {
      messagesPerHour: override?.messagesPerHour ?? this.settings.messagesPerHour,
      recipientsPerDay: override?.recipientsPerDay ?? this.settings.recipientsPerDay,
    };
  }

  /** The count over the sliding window: this bucket, plus the part of the previous one still inside it. */
  private async windowed(name: string, user: string, windowMs: number): Promise<{ count: number; key: string }> {
    const now = this.now();
    const bucket = Math.floor(now / windowMs);
    const key = `${name}:${user}:${bucket}`;
    const [current, previous] = await Promise.all([this.store.get(key), this.store.get(`${name}:${user}:${bucket - 1}`)]);
    const overlap = 1 - (now % windowMs) / windowMs;
    return { count: current + previous * overlap, key };
  }

  /** Adds `by` to this bucket; the count over the sliding window afterwards. */
  private async reserve(name: string, user: string, windowMs: number, by: number): Promise<{ count: number; key: string }> {
    const now = this.now();
    const bucket = Math.floor(now / windowMs);
    const key = `${name}:${user}:${bucket}`;
    const current = await this.store.increment(key, by, (2 * windowMs) / 1000);
    const previous = await this.store.get(`${name}:${user}:${bucket - 1}`);
    const overlap = 1 - (now % windowMs) / windowMs;
    return { count: current + previous * overlap, key };
  }

  private async decideNow({ user, recipients, queueId }: SendRequest): Promise<SendDecision> {
    const suspension = (await this.store.list('suspensions')).find((entry) => entry.id === user);
    if (suspension && !(await this.liftIfRekeyed(user, suspension.note))) return { verdict: 'suspended', reply: SUSPENDED_REPLY };

    // Reserved first, then checked: with a store shared by several replicas, two sessions of one
    // user on two replicas cannot both take the last message (a refused reservation is given back).
    const limits = this.limitsOf(user);
    const messages = await this.reserve('messages', user, HOUR_MS, 1);
    const rcpts = await this.reserve('recipients', user, DAY_MS, recipients);
    let over: { limit: LimitName; max: number } | undefined;
    if (limits.messagesPerHour > 0 && messages.count > limits.messagesPerHour) over = { limit: 'messages_per_hour', max: limits.messagesPerHour };
    else if (limits.recipientsPerDay > 0 && rcpts.count > limits.recipientsPerDay) over = { limit: 'recipients_per_day', max: limits.recipientsPerDay };

    if (!over) {
      this.remember(user, queueId);
      return { verdict: 'accept' };
    }
    await this.store.increment(messages.key, -1, (2 * HOUR_MS) / 1000);
    await this.store.increment(rcpts.key, -recipients, (2 * DAY_MS) / 1000);

    this.hooks.limited?.(over.limit);
    // Counted per password: after a suspension is lifted by a new password, the count starts over.
    const refused = await this.windowed(`refused:${this.fingerprints.get(user) ?? ''}`, user, HOUR_MS);
    await this.store.increment(refused.key, 1, (2 * HOUR_MS) / 1000);
    const refusals = refused.count + 1;
    this.hooks.log.warn({ event: 'rate_limited', user, limit: over.limit, max: over.max, refusals }, `${user} reached the sending limit (${over.max} ${over.limit.replaceAll('_', ' ')}); refused`);
    const threshold = this.settings.suspendThreshold;
    if (threshold > 0 && refusals >= threshold) {
      await this.suspend(user, refusals);
      return { verdict: 'suspended', reply: SUSPENDED_REPLY };
    }
    const what = over.limit === 'messages_per_hour' ? `${over.max} messages per hour` : `${over.max} recipients per day`;
    return { ...over, verdict: 'limited', reply: `451 4.7.1 Sending limit reached: at most ${what} for this account; try again later` };
  }

  private remember(user: string, id: string): void {
    if (!id) return;
    const now = this.now();
    const list = this.recent.get(user) ?? [];
    list.push({ id, at: now });
    // Oldest first: drop what is older than an hour, and beyond the cap, from the front only.
    let stale = 0;
    while (stale < list.length && list[stale]!.at <= now - HOUR_MS) stale++;
    list.splice(0, Math.max(stale, list.length - RECENT_PER_USER));
    this.recent.set(user, list);
  }

  /** The suspensions in force, with why; the circuit breaker's are counted refusals. */
  async suspensions(): Promise<Array<{ user: string; since: number; reason: string }>> {
    return (await this.store.list('suspensions')).map((entry) => ({ user: entry.id, since: entry.until - SUSPENSION_MS, reason: entry.reason ?? 'too many messages over the sending limits' }));
  }

  /** What the user sent over the current windows (messages this hour, recipients today), without counting. */
  async usage(user: string): Promise<{ messagesPerHour: number; recipientsPerDay: number; limits: { messagesPerHour: number; recipientsPerDay: number } }> {
    const [messages, recipients] = await Promise.all([this.windowed('messages', user, HOUR_MS), this.windowed('recipients', user, DAY_MS)]);
    return { messagesPerHour: Math.round(messages.count), recipientsPerDay: Math.round(recipients.count), limits: this.limitsOf(user) };
  }

  /** An operator's suspension: as the circuit breaker's (recent mail held), lifted by unsuspend or a new password. */
  async suspendByHand(user: string, reason: string): Promise<number> {
    return this.suspend(user.toLowerCase(), 0, reason);
  }

  /** False when the user was not suspended. */
  async unsuspend(user: string): Promise<boolean> {
    const known = (await this.store.list('suspensions')).some((entry) => entry.id === user.toLowerCase());
    if (known) await this.store.remove('suspensions', user.toLowerCase());
    return known;
  }

  private async suspend(user: string, refusals: number, reason?: string): Promise<number> {
    await this.store.put('suspensions', { id: user, until: this.now() + SUSPENSION_MS, note: this.fingerprints.get(user) ?? '', ...(reason ? { reason } : {}) });
    const ids = (this.recent.get(user) ?? []).map((entry) => entry.id);
    this.recent.delete(user);
    let held = 0;
    try {
      held = ids.length > 0 ? await this.hooks.hold(ids) : 0;
    } catch (error) {
      this.hooks.log.error({ event: 'hold_failed', user, error: (error as Error).message }, `could not put ${user}'s queued mail on hold: ${(error as Error).message}`);
    }
    if (reason) return held;
    this.hooks.log.error(
      { event: 'user_suspended', user, refusals, held },
      `suspended ${user} after ${refusals} messages refused by the sending limits within an hour: ${held} queued message(s) put on hold (postsuper -H to release, -d to delete); the suspension ends when the password changes`,
    );
    return held;
  }

  /** True (and the suspension gone) when the user's password hash is no longer the one suspended. */
  private async liftIfRekeyed(user: string, note: string | undefined): Promise<boolean> {
    const current = this.fingerprints.get(user);
    if (current === undefined || current === note) return false;
    await this.store.remove('suspensions', user);
    this.hooks.log.info({ event: 'user_unsuspended', user }, `${user} may send again: the password has changed since the suspension`);
    return true;
  }
}

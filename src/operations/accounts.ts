// Accounts: the users and aliases from the config, whether each is suspended (the shared store, so
// every replica agrees), what they sent against their limits, and when they last logged in (seen in
// the daemons' log lines since this supervisor started). Suspend, unsuspend, and the held mail of a
// suspended user released or deleted in one step.
import type { AbuseDefences } from '../abuse/defences.ts';
import type { AliasEntry, UserEntry } from '../config/values.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import type { Actor, Audit } from './audit.ts';
import { failed, notFound, usage } from './errors.ts';
import type { QueueActionResult, QueueOperations } from './queue.ts';

const DOVECOT_LOGIN = /\bLogin: user=<([^>]+)>/;
const POSTFIX_LOGIN = /\bsasl_username=(\S+)/;

export interface Account {
  address: string;
  aliases: string[];
  suspended: boolean;
  suspension?: { since: number; reason: string };
  sent?: { messagesPerHour: number; recipientsPerDay: number; limits: { messagesPerHour: number; recipientsPerDay: number } };
  /** Unix ms of the last login seen by this supervisor (IMAP or SMTP AUTH); undefined = none seen. */
  lastLogin?: number;
}

export interface AccountSource {
  users: () => UserEntry[];
  aliases: () => AliasEntry[];
}

export class AccountOperations {
  private readonly logins = new Map<string, number>();
  private readonly source: AccountSource;
  private readonly defences: AbuseDefences;
  private readonly queue: QueueOperations;
  private readonly audit: Audit;

  constructor(source: AccountSource, defences: AbuseDefences, queue: QueueOperations, audit: Audit) {
    this.source = source;
    this.defences = defences;
    this.queue = queue;
    this.audit = audit;
  }

  observe(line: DaemonLogLine, now = Date.now()): void {
    const user = DOVECOT_LOGIN.exec(line.msg)?.[1] ?? (line.program?.endsWith('smtpd') ? POSTFIX_LOGIN.exec(line.msg)?.[1]?.replace(/,$/, '') : undefined);
    if (user) this.logins.set(user.toLowerCase(), now);
  }

  async list(): Promise<Account[]> {
    const suspensions = new Map((await this.suspensions()).map((s) => [s.user, s]));
    const aliases = this.source.aliases();
    return Promise.all(
      this.source.users().map(async (user) => {
        const suspension = suspensions.get(user.address);
        const sent = await this.defences.sending?.usage(user.address).catch(() => undefined);
        const lastLogin = this.logins.get(user.address);
        return {
          address: user.address,
          aliases: aliases.filter((a) => a.targets.includes(user.address)).map((a) => a.alias),
          suspended: suspension !== undefined,
          ...(suspension ? { suspension: { since: suspension.since, reason: suspension.reason } } : {}),
          ...(sent ? { sent } : {}),
          ...(lastLogin ? { lastLogin } : {}),
        };
      }),
    );
  }

  private async suspensions() {
    return (await this.defences.sending?.suspensions()) ?? [];
  }

  private user(address: string): string {
    const wanted = address.trim().toLowerCase();
    if (!/^[^\s@]+@[^\s@]+$/.test(wanted)) throw usage(`"${address}" is not a user address (user@domain)`);
    if (!this.source.users().some((u) => u.address === wanted)) throw notFound(`${wanted} is not a user in MAIL_USERS or MAIL_USERS_FILE`);
    return wanted;
  }

  private limits() {
    const sending = this.defences.sending;
    if (!sending) throw failed('sending limits are off (SEND_LIMIT_MESSAGES=0, SEND_LIMIT_RECIPIENTS=0 and no SEND_LIMITS, or a mailbox replica): the policy service that enforces a suspension is not in the mail path');
    return sending;
  }

  async suspend(address: string, reason: string, actor: Actor): Promise<{ user: string; held: number }> {
    const user = this.user(address);
    const why = reason.trim();
    if (why.length === 0 || why.length > 200) throw usage('suspend: give a reason (1 to 200 characters), e.g. --reason "compromised password"');
    const held = await this.limits().suspendByHand(user, why);
    this.audit.record(actor, 'user_suspend', { user, reason: why, held }, `suspended ${user} (${why}); ${held} recent message(s) put on hold`);
    return { user, held };
  }

  /** Lifts a suspension; `held` then releases (or deletes) the user's mail on hold in the same step. */
  async unsuspend(address: string, actor: Actor, held?: 'release' | 'delete'): Promise<{ user: string; held?: QueueActionResult }> {
    const user = this.user(address);
    if (!(await this.limits().unsuspend(user))) throw notFound(`${user} is not suspended`);
    this.audit.record(actor, 'user_unsuspend', { user }, `unsuspended ${user}`);
    if (!held) return { user };
    return { user, held: await this.heldMail(user, held, actor, true) };
  }

  /** The user's mail on hold, released (delivered now) or deleted; `none` = fine when there is none. */
  async heldMail(address: string, action: 'release' | 'delete', actor: Actor, noneIsFine = false): Promise<QueueActionResult> {
    const user = this.user(address);
    if (action === 'release' && (await this.suspensions()).some((s) => s.user === user)) {
      throw failed(`${user} is still suspended: unsuspend first (\`relaybox users unsuspend ${user} --release-held\` does both)`);
    }
    try {
      return await this.queue.act(action, { state: 'hold', user }, actor);
    } catch (error) {
      if (noneIsFine && (error as { kind?: string }).kind === 'not_found') return { action, ids: [], missing: [] };
      throw error;
    }
  }
}

// Undeliverable mail with the null sender (a bounce that cannot be returned, an auto-reply): with
// no POSTMASTER_ADDRESS set, Postfix discards it without a word (2bounce is not in notify_classes,
// since those notices hold other users' mail). The supervisor says so, one event per message.
import type { Logger } from 'pino';
import type { DaemonLogLine } from '../daemons/log-line.ts';

/** Queue ids remembered at most (a message is normally delivered or bounced within seconds). */
const REMEMBERED = 10_000;

export class DoubleBounceWatch {
  private readonly nullSender = new Set<string>();
  private readonly log: Logger;
  /** Whether Postfix discards them (no explicit POSTMASTER_ADDRESS). */
  discarding: boolean;

  constructor(discarding: boolean, log: Logger) {
    this.discarding = discarding;
    this.log = log;
  }

  observe(line: DaemonLogLine): void {
    if (!this.discarding || !line.program?.startsWith('postfix/')) return;
    const queued = /^([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): from=<>, /.exec(line.msg);
    if (queued) {
      if (this.nullSender.size >= REMEMBERED) this.nullSender.delete(this.nullSender.values().next().value!);
      this.nullSender.add(queued[1]!);
      return;
    }
    const removed = /^(\w+): removed$/.exec(line.msg);
    if (removed) {
      this.nullSender.delete(removed[1]!);
      return;
    }
    const bounced = /^(\w+): to=<([^>]*)>.*\bstatus=bounced \((.*)\)\s*$/.exec(line.msg);
    if (bounced && this.nullSender.has(bounced[1]!)) {
      this.log.warn(
        { event: 'double_bounce_discarded', queueId: bounced[1], recipient: bounced[2], reason: bounced[3] },
        `undeliverable mail with the null sender (a bounce or auto-reply) to ${bounced[2]} was discarded: ${bounced[3]}. Set POSTMASTER_ADDRESS to receive these notices`,
      );
    }
  }
}

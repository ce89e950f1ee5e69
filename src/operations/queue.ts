// Queue administration: list, show, and hold / release / delete / retry one message or everything a
// filter matches. Changes go through postsuper (-h, -H, -d, ids on stdin) and postqueue -i: never
// `postsuper -r`, which sends a message through cleanup again (and the signing milter a second time).
import { command } from '../host/command.ts';
import type { StatePaths } from '../render/paths.ts';
import type { Actor, Audit } from './audit.ts';
import { failed, notFound, usage } from './errors.ts';
import { checkQueueId, isEmptyFilter, QueueReader, queueSummary, type QueuedMessage, type QueueFilter } from './queue-read.ts';

export const QUEUE_ACTIONS = ['hold', 'release', 'delete', 'retry'] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

export interface QueueActionResult {
  action: QueueAction;
  /** The messages acted on. */
  ids: string[];
  /** Ids asked for by name that are not in the queue (or not in a state the action applies to). */
  missing: string[];
}

/** Which states each action applies to, and postsuper's word for one message done. */
const ACTS: Record<QueueAction, { states: string[]; postsuper?: { flag: string; done: RegExp } }> = {
  hold: { states: ['active', 'deferred', 'incoming', 'maildrop'], postsuper: { flag: '-h', done: /^postsuper: (\S+): placed on hold/gm } },
  release: { states: ['hold'], postsuper: { flag: '-H', done: /^postsuper: (\S+): released from hold/gm } },
  delete: { states: ['active', 'deferred', 'incoming', 'maildrop', 'hold'], postsuper: { flag: '-d', done: /^postsuper: (\S+): removed/gm } },
  retry: { states: ['deferred', 'active', 'incoming'] },
};

export class QueueOperations {
  readonly reader: QueueReader;
  private readonly paths: StatePaths;
  private readonly audit: Audit;

  constructor(paths: StatePaths, audit: Audit) {
    this.paths = paths;
    this.reader = new QueueReader(paths);
    this.audit = audit;
  }

  async list(filter: QueueFilter): Promise<{ messages: QueuedMessage[]; summary: ReturnType<typeof queueSummary> }> {
    const messages = await this.reader.matching(filter);
    return { messages, summary: queueSummary(await this.reader.all()) };
  }

  /** One message: its envelope and headers; the body only when asked for. */
  async show(id: string, withBody = false): Promise<{ message: QueuedMessage; headers: string; body?: string }> {
    checkQueueId(id);
    const [message] = await this.reader.matching({ ids: [id] });
    const headers = message && (await this.reader.part(id, 'headers'));
    if (!message || headers === undefined) throw notFound(`no message ${id} in the queue (delivered, deleted, or never there: see \`relaybox queue list\`)`);
    const body = withBody ? await this.reader.part(id, 'body') : undefined;
    return { message: { ...message, user: await this.reader.submitter(id) }, headers, ...(body !== undefined ? { body } : {}) };
  }

  /** Acts on every message the filter matches; an empty filter needs `all` (so nothing is done by accident). */
  async act(action: QueueAction, filter: QueueFilter, actor: Actor, all = false): Promise<QueueActionResult> {
    if (!(QUEUE_ACTIONS as readonly string[]).includes(action)) throw usage(`"${action}" is not a queue action; use one of ${QUEUE_ACTIONS.join(', ')}`);
    if (isEmptyFilter(filter) && !all) throw usage(`queue ${action}: name the message(s) (ids) or a filter (state, sender, recipient, user, older-than), or say all`);
    const { states, postsuper } = ACTS[action];
    const candidates = (await this.reader.matching(filter)).filter((m) => states.includes(m.state));
    const ids = candidates.map((m) => m.id);
    const missing = (filter.ids ?? []).filter((id) => !ids.includes(id));
    if (ids.length === 0) {
      const what = filter.ids ? `no message ${filter.ids.join(', ')} in a state ${action} applies to (${states.join(', ')})` : `no queued message in a state ${action} applies to (${states.join(', ')}) matches`;
      throw notFound(`queue ${action}: ${what}`);
    }
    const done = postsuper ? await this.postsuper(postsuper.flag, postsuper.done, ids) : await this.flush(ids);
    // Released mail goes to the deferred queue; delivered now, not at the next queue run.
    if (action === 'release' && done.length > 0) await this.flush(done);
    if (done.length === 0) throw failed(`queue ${action}: Postfix acted on none of ${ids.join(', ')} (they left the queue meanwhile?)`);
    this.audit.record(actor, `queue_${action}`, { ids: done, filter }, `queue ${action}: ${done.length} message(s) ${done.join(', ')}`);
    return { action, ids: done, missing };
  }

  private async postsuper(flag: string, done: RegExp, ids: string[]): Promise<string[]> {
    const result = await command('postsuper', ['-c', this.paths.postfix, flag, '-'], { input: `${ids.join('\n')}\n`, reject: false, timeoutMs: 60_000 });
    return [...result.all.matchAll(done)].map((match) => match[1]!).filter((id) => ids.includes(id));
  }

  /** postqueue -i: a delivery attempt now, for each message (its per-recipient backoff forgotten). */
  private async flush(ids: string[]): Promise<string[]> {
    const done: string[] = [];
    for (const id of ids) {
      const result = await command('postqueue', ['-c', this.paths.postfix, '-i', id], { reject: false, timeoutMs: 10_000 });
      if (result.exitCode === 0) done.push(id);
    }
    return done;
  }
}

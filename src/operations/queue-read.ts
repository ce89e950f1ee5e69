// Reading Postfix's queue through its own interfaces: `postqueue -j` (one JSON object per message)
// for the list, `postcat` for one message's envelope, headers or body. Never the queue files.
import { command } from '../host/command.ts';
import type { StatePaths } from '../render/paths.ts';
import { parseDuration, usage } from './errors.ts';

export const QUEUE_STATES = ['active', 'deferred', 'hold', 'incoming', 'maildrop'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export interface QueuedRecipient {
  address: string;
  /** Why the last attempt for this recipient was deferred (Postfix's own words). */
  reason?: string;
}

export interface QueuedMessage {
  id: string;
  state: QueueState;
  /** Unix time (s) the message entered the queue. */
  arrival: number;
  ageSeconds: number;
  size: number;
  sender: string;
  recipients: QueuedRecipient[];
  /** The last deferral reason of any recipient. */
  reason?: string;
  /** The SASL user who submitted it, when a user filter asked for it. */
  user?: string;
}

export interface QueueFilter {
  state?: QueueState;
  /** Substring of the envelope sender (case-insensitive). */
  sender?: string;
  /** Substring of any recipient (case-insensitive). */
  recipient?: string;
  /** The authenticated user who submitted it (exact, case-insensitive). */
  user?: string;
  /** At least this old (seconds). */
  olderThan?: number;
  /** At most this old (seconds). */
  newerThan?: number;
  /** These ids only. */
  ids?: string[];
}

const QUEUE_ID = /^[0-9A-Za-z]{6,20}$/;

export function checkQueueId(id: string): string {
  if (!QUEUE_ID.test(id)) throw usage(`"${id}" is not a Postfix queue id (6 to 20 letters and digits, as \`relaybox queue list\` shows them)`);
  return id;
}

/** A filter from untrusted strings (CLI flags, query parameters): each one checked, named when wrong. */
export function parseQueueFilter(raw: Record<string, string | string[] | undefined>): QueueFilter {
  const known = new Set(['state', 'sender', 'recipient', 'user', 'older-than', 'newer-than', 'id']);
  for (const key of Object.keys(raw)) if (!known.has(key) && raw[key] !== undefined) throw usage(`unknown filter "${key}"; filters: ${[...known].join(', ')}`);
  const one = (key: string) => {
    const value = raw[key];
    if (Array.isArray(value)) throw usage(`${key}: give it once`);
    return value === undefined || value === '' ? undefined : value;
  };
  const filter: QueueFilter = {};
  const state = one('state');
  if (state !== undefined) {
    if (!(QUEUE_STATES as readonly string[]).includes(state)) throw usage(`state: "${state}" is not a queue state; use one of ${QUEUE_STATES.join(', ')}`);
    filter.state = state as QueueState;
  }
  for (const key of ['sender', 'recipient', 'user'] as const) {
    const value = one(key);
    if (value === undefined) continue;
    if (value.length > 254 || /[\s<>]/.test(value)) throw usage(`${key}: "${value}" is not (part of) an address`);
    filter[key] = value.toLowerCase();
  }
  const older = one('older-than');
  if (older !== undefined) filter.olderThan = parseDuration('older-than', older);
  const newer = one('newer-than');
  if (newer !== undefined) filter.newerThan = parseDuration('newer-than', newer);
  const ids = raw.id === undefined ? [] : ([] as string[]).concat(raw.id).flatMap((id) => id.split(',')).filter(Boolean);
  if (ids.length > 0) filter.ids = ids.map(checkQueueId);
  return filter;
}

export function isEmptyFilter(filter: QueueFilter): boolean {
  return Object.values(filter).every((value) => value === undefined);
}

interface PostqueueEntry {
  queue_name: string;
  queue_id: string;
  arrival_time: number;
  message_size: number;
  sender: string;
  recipients?: Array<{ address: string; delay_reason?: string }>;
}

export function parsePostqueue(output: string, now = Date.now()): QueuedMessage[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      const entry = JSON.parse(line) as PostqueueEntry;
      const recipients = (entry.recipients ?? []).map((r) => ({ address: r.address, ...(r.delay_reason ? { reason: r.delay_reason } : {}) }));
      const reason = recipients.findLast((r) => r.reason)?.reason;
      return {
        id: entry.queue_id,
        state: (QUEUE_STATES as readonly string[]).includes(entry.queue_name) ? (entry.queue_name as QueueState) : 'incoming',
        arrival: entry.arrival_time,
        ageSeconds: Math.max(0, Math.round(now / 1000 - entry.arrival_time)),
        size: entry.message_size,
        sender: entry.sender,
        recipients,
        ...(reason ? { reason } : {}),
      };
    });
}

export class QueueReader {
  private readonly paths: StatePaths;

  constructor(paths: StatePaths) {
    this.paths = paths;
  }

  async all(): Promise<QueuedMessage[]> {
    const result = await command('postqueue', ['-c', this.paths.postfix, '-j'], { reject: false, timeoutMs: 30_000 });
    if (result.exitCode !== 0) throw new Error(`postqueue -j failed: ${result.all.trim()}`);
    return parsePostqueue(result.stdout);
  }

  async matching(filter: QueueFilter): Promise<QueuedMessage[]> {
    const matches = (await this.all()).filter((m) => matchesEnvelope(m, filter));
    if (!filter.user) return matches;
    const withUser = await Promise.all(matches.map(async (m) => ({ ...m, user: await this.submitter(m.id) })));
    return withUser.filter((m) => m.user === filter.user);
  }

  /** The SASL user who submitted a message (its envelope's sasl_username), lower case. */
  async submitter(id: string): Promise<string | undefined> {
    const result = await command('postcat', ['-c', this.paths.postfix, '-e', '-q', id], { reject: false, timeoutMs: 10_000 });
    return /^(?:named_attribute: )?sasl_username[:=]\s*(\S+)/m.exec(result.stdout)?.[1]?.toLowerCase();
  }

  /** One message's headers (or its body, when asked): undefined when no such message is queued. */
  async part(id: string, part: 'headers' | 'body'): Promise<string | undefined> {
    const result = await command('postcat', ['-c', this.paths.postfix, part === 'headers' ? '-h' : '-b', '-q', checkQueueId(id)], { reject: false, timeoutMs: 10_000 });
    return result.exitCode === 0 ? result.stdout : undefined;
  }
}

export function matchesEnvelope(message: QueuedMessage, filter: QueueFilter): boolean {
  if (filter.ids && !filter.ids.includes(message.id)) return false;
  if (filter.state && message.state !== filter.state) return false;
  if (filter.sender && !message.sender.toLowerCase().includes(filter.sender)) return false;
  if (filter.recipient && !message.recipients.some((r) => r.address.toLowerCase().includes(filter.recipient!))) return false;
  if (filter.olderThan !== undefined && message.ageSeconds < filter.olderThan) return false;
  if (filter.newerThan !== undefined && message.ageSeconds > filter.newerThan) return false;
  return true;
}

/** Counts by state and by recipient domain. */
export function queueSummary(messages: QueuedMessage[]) {
  const byState = Object.fromEntries(QUEUE_STATES.map((state) => [state, 0])) as Record<QueueState, number>;
  const byDestination: Record<string, number> = {};
  for (const message of messages) {
    byState[message.state]++;
    for (const domain of new Set(message.recipients.map((r) => r.address.slice(r.address.lastIndexOf('@') + 1).toLowerCase()))) byDestination[domain] = (byDestination[domain] ?? 0) + 1;
  }
  const oldest = messages.reduce((max, m) => Math.max(max, m.ageSeconds), 0);
  return { total: messages.length, byState, byDestination, oldestSeconds: oldest };
}

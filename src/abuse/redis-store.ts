// The abuse store shared by every replica (REDIS_URL): Redis, Valkey or any Redis-compatible server.
// Counters are plain keys (INCRBY, then EXPIRE NX in one transaction); each list (bans, suspensions)
// is a hash of id -> {until, note}, lapsed entries dropped when read. Every key starts `relaybox:`.
// Fail fast and closed: while the server cannot be reached every call rejects at once (no offline
// queue) or within COMMAND_TIMEOUT_MS, and the callers answer with a temporary error, never "no limit".
import { createClient } from '@redis/client';
import type { Logger } from 'pino';
import type { RedisTarget } from '../config/areas/replicas.ts';
import type { ProbeResult } from '../protocol/probes.ts';
import type { AbuseStore, EntryList, StoredEntry } from './store.ts';

const PREFIX = 'relaybox:';
const CONNECT_TIMEOUT_MS = 1000;
const COMMAND_TIMEOUT_MS = 1000;
/** Reconnect after 100 ms, doubling up to 2 s while the server stays away. */
const reconnectDelay = (retries: number) => Math.min(100 * 2 ** retries, 2000);

const counterKey = (key: string) => `${PREFIX}counter:${key}`;
const listKey = (list: EntryList) => `${PREFIX}list:${list}`;

/** A message about a failure that never carries the URL (it may hold a password). */
function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/rediss?:\/\/\S*/g, 'redis://***');
}

function within<T>(promise: Promise<T>, ms = COMMAND_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class RedisStore implements AbuseStore {
  private readonly client;
  private readonly log: Logger;
  private readonly now: () => number;
  private reachable: boolean | undefined;
  private lastError = 'not connected yet';
  private readonly firstReady: Promise<void>;

  constructor(target: RedisTarget, log: Logger, now: () => number = Date.now) {
    this.log = log;
    this.now = now;
    const socket = { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay };
    this.client = createClient({
      ...(target.socketPath ? { socket: { ...socket, path: target.socketPath } } : { url: target.url, socket }),
      disableOfflineQueue: true,
      commandOptions: { timeout: COMMAND_TIMEOUT_MS },
      pingInterval: 5000,
    });
    this.client.on('error', (error: unknown) => this.down(error));
    this.client.on('ready', () => this.up());
    this.firstReady = new Promise((resolve) => this.client.once('ready', () => resolve()));
    this.client.connect().catch((error: unknown) => this.down(error));
  }

  /** Waits up to `ms` for the first connection (so a start sees the bans already made); never throws. */
  async ready(ms = 2000): Promise<boolean> {
    await Promise.race([this.firstReady, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
    return this.client.isReady;
  }

  private up(): void {
    if (this.reachable !== true) this.log.info({ event: 'store_connected', store: 'redis' }, 'connected to the shared store (Redis)');
    this.reachable = true;
  }

  private down(error: unknown): void {
    this.lastError = reason(error);
    if (this.reachable === false) return; // said once per outage
    this.reachable = false;
    this.log.error({ event: 'store_unreachable', store: 'redis', error: this.lastError }, `the shared store (Redis) cannot be reached: ${this.lastError}; sending limits answer 451 until it is back`);
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    if (!this.client.isReady) throw new Error(`the shared store (Redis) is unreachable: ${this.lastError}`);
    try {
      return await within(command());
    } catch (error) {
      throw new Error(`the shared store (Redis) failed: ${reason(error)}`);
    }
  }

  async get(key: string): Promise<number> {
    const value = await this.run(() => this.client.get(counterKey(key)));
    return value === null ? 0 : Number(value);
  }

  async increment(key: string, by: number, ttlSeconds: number): Promise<number> {
    const replies = await this.run(() => this.client.multi().incrBy(counterKey(key), by).expire(counterKey(key), ttlSeconds, 'NX').exec());
    return Number(replies[0]);
  }

  async list(list: EntryList): Promise<StoredEntry[]> {
    const all = await this.run(() => this.client.hGetAll(listKey(list)));
    const now = this.now();
    const entries: StoredEntry[] = [];
    const lapsed: string[] = [];
    for (const [id, raw] of Object.entries(all)) {
      try {
        const { until, note, reason } = JSON.parse(String(raw)) as { until?: unknown; note?: unknown; reason?: unknown };
        if (typeof until === 'number' && until > now) entries.push({ id, until, ...(typeof note === 'string' ? { note } : {}), ...(typeof reason === 'string' ? { reason } : {}) });
        else lapsed.push(id);
      } catch {
        lapsed.push(id);
      }
    }
    if (lapsed.length > 0) void this.run(() => this.client.hDel(listKey(list), lapsed)).catch(() => undefined);
    return entries;
  }

  async put(list: EntryList, entry: StoredEntry): Promise<void> {
    await this.run(() => this.client.hSet(listKey(list), entry.id, JSON.stringify({ until: entry.until, ...(entry.note !== undefined ? { note: entry.note } : {}), ...(entry.reason !== undefined ? { reason: entry.reason } : {}) })));
  }

  async remove(list: EntryList, id: string): Promise<void> {
    await this.run(() => this.client.hDel(listKey(list), id));
  }

  /** Redis keeps what it was given (its own persistence is the operator's choice). */
  async flush(): Promise<void> {}

  /** The readiness check: a PING answered. */
  async probe(): Promise<ProbeResult> {
    const started = performance.now();
    const checkedAt = new Date().toISOString();
    const result = (error?: string): ProbeResult => ({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
    if (!this.client.isReady) return result(`unreachable (${this.lastError})`);
    try {
      await within(this.client.ping());
      return result();
    } catch (error) {
      return result(`unreachable (${reason(error)})`);
    }
  }

  async close(): Promise<void> {
    try {
      this.client.destroy();
    } catch {
      // already closed
    }
  }
}

// Where the abuse defences keep what must outlive a restart: counters with an expiry (sending
// limits), and lists of entries with an expiry (bans, suspended users). Narrow and async, so that a
// shared implementation (e.g. Redis, for several replicas) can stand in for the file-backed one.
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface StoredEntry {
  id: string;
  /** When the entry lapses (ms since the epoch). */
  until: number;
  /** A short note kept with the entry (e.g. which password hash a suspension was made under). */
  note?: string;
  /** Why (a suspension or ban an operator made, or the circuit breaker's own words). */
  reason?: string;
}

export type EntryList = 'bans' | 'suspensions';

export interface AbuseStore {
  /** The counter's value; 0 when it does not exist or has expired. */
  get(key: string): Promise<number>;
  /** Adds `by` and returns the new value; a counter that did not exist expires `ttlSeconds` from now. */
  increment(key: string, by: number, ttlSeconds: number): Promise<number>;
  /** The entries of a list that have not lapsed. */
  list(list: EntryList): Promise<StoredEntry[]>;
  /** Adds or replaces the entry with the same id. */
  put(list: EntryList, entry: StoredEntry): Promise<void>;
  remove(list: EntryList, id: string): Promise<void>;
  /** Everything written so far is durable once this resolves. */
  flush(): Promise<void>;
}

interface Snapshot {
  counters: Record<string, { value: number; expires: number }>;
  lists: Record<EntryList, StoredEntry[]>;
}

/** In memory only: for tests, and the base of the file-backed store. */
export class MemoryStore implements AbuseStore {
  protected counters = new Map<string, { value: number; expires: number }>();
  protected lists: Record<EntryList, Map<string, StoredEntry>> = { bans: new Map(), suspensions: new Map() };
  protected readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async get(key: string): Promise<number> {
    const counter = this.counters.get(key);
    return counter && counter.expires > this.now() ? counter.value : 0;
  }

  async increment(key: string, by: number, ttlSeconds: number): Promise<number> {
    const now = this.now();
    const known = this.counters.get(key);
    const counter = known && known.expires > now ? known : { value: 0, expires: now + ttlSeconds * 1000 };
    counter.value += by;
    this.counters.set(key, counter);
    this.changed('counter');
    return counter.value;
  }

  async list(list: EntryList): Promise<StoredEntry[]> {
    const now = this.now();
    return [...this.lists[list].values()].filter((entry) => entry.until > now).map((entry) => ({ ...entry }));
  }

  async put(list: EntryList, entry: StoredEntry): Promise<void> {
    this.lists[list].set(entry.id, { ...entry });
    this.changed('list');
  }

  async remove(list: EntryList, id: string): Promise<void> {
    if (this.lists[list].delete(id)) this.changed('list');
  }

  async flush(): Promise<void> {}

  /** Called after every change. */
  protected changed(_what: 'counter' | 'list'): void {}

  protected snapshot(): Snapshot {
    const now = this.now();
    const live = <T extends { expires?: number; until?: number }>(entries: Array<[string, T]>) => entries.filter(([, v]) => (v.expires ?? v.until ?? 0) > now);
    return {
      counters: Object.fromEntries(live([...this.counters])),
      lists: { bans: live([...this.lists.bans]).map(([, e]) => e), suspensions: live([...this.lists.suspensions]).map(([, e]) => e) },
    };
  }
}

/** A counter nobody flushed (see FileStore.changed) reaches the disk within this. */
export const COUNTER_WRITE_MS = 1000;

/**
 * The whole state in one JSON file, replaced atomically (write, then rename). Nothing that depends on
 * a change is answered before it is on disk: a ban or suspension is written before put() resolves,
 * and the policy service answers only after flush(), so a supervisor killed with -9 forgets nothing it
 * acted on. Writes are off the event loop and shared: every change made while one write is under way
 * goes into the next (replacing a file on ext4 waits for the journal, milliseconds under mail load).
 */
export class FileStore extends MemoryStore {
  private readonly path: string;
  private writing: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private counterTimer: NodeJS.Timeout | undefined;
  private madeDir: Promise<unknown> | undefined;

  private constructor(path: string, now: () => number) {
    super(now);
    this.path = path;
  }

  /** Opens the store at `path`, with what an earlier run left there (lapsed entries dropped). */
  static open(path: string, options: { now?: () => number } = {}): FileStore {
    const store = new FileStore(path, options.now ?? Date.now);
    store.load();
    return store;
  }

  private load(): void {
    let saved: Partial<Snapshot>;
    try {
      saved = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<Snapshot>;
    } catch {
      return; // nothing saved yet, or unreadable: start empty
    }
    const now = this.now();
    for (const [key, counter] of Object.entries(saved.counters ?? {})) {
      if (typeof counter?.value === 'number' && typeof counter.expires === 'number' && counter.expires > now) this.counters.set(key, counter);
    }
    for (const list of ['bans', 'suspensions'] as const) {
      for (const entry of saved.lists?.[list] ?? []) {
        if (typeof entry?.id === 'string' && typeof entry.until === 'number' && entry.until > now) this.lists[list].set(entry.id, entry);
      }
    }
  }

  override async put(list: EntryList, entry: StoredEntry): Promise<void> {
    await super.put(list, entry);
    await this.flush();
  }

  override async remove(list: EntryList, id: string): Promise<void> {
    await super.remove(list, id);
    await this.flush();
  }

  /** A counter changed outside a decision that flushes (none does today) still reaches the disk. */
  protected override changed(what: 'counter' | 'list'): void {
    if (what === 'counter') this.counterTimer ??= setTimeout(() => void this.flush().catch(() => undefined), COUNTER_WRITE_MS).unref();
  }

  /** Resolves once a write that began after this call has finished: everything changed before it is on disk. */
  override flush(): Promise<void> {
    this.queued ??= (this.writing ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        const write = this.write();
        this.writing = write;
        return write;
      });
    return this.queued;
  }

  private async write(): Promise<void> {
    clearTimeout(this.counterTimer);
    this.counterTimer = undefined;
    const content = `${JSON.stringify(this.snapshot())}\n`;
    this.madeDir ??= mkdir(dirname(this.path), { recursive: true });
    await this.madeDir;
    const temporary = `${this.path}.tmp-${process.pid}`;
    await writeFile(temporary, content, { mode: 0o600 });
    await rename(temporary, this.path);
  }
}

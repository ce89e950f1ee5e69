// Where the abuse defences keep what must outlive a restart: counters with an expiry (sending
// limits), and lists of entries with an expiry (bans, suspended users). Narrow and async, so that a
// shared implementation (e.g. Redis, for several replicas) can stand in for the file-backed one.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StoredEntry {
  id: string;
  /** When the entry lapses (ms since the epoch). */
  until: number;
  /** A short note kept with the entry (e.g. which password hash a suspension was made under). */
  note?: string;
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
    this.changed();
    return counter.value;
  }

  async list(list: EntryList): Promise<StoredEntry[]> {
    const now = this.now();
    return [...this.lists[list].values()].filter((entry) => entry.until > now).map((entry) => ({ ...entry }));
  }

  async put(list: EntryList, entry: StoredEntry): Promise<void> {
    this.lists[list].set(entry.id, { ...entry });
    this.changed();
  }

  async remove(list: EntryList, id: string): Promise<void> {
    if (this.lists[list].delete(id)) this.changed();
  }

  async flush(): Promise<void> {}

  /** Called after every change. */
  protected changed(): void {}

  protected snapshot(): Snapshot {
    const now = this.now();
    const live = <T extends { expires?: number; until?: number }>(entries: Array<[string, T]>) => entries.filter(([, v]) => (v.expires ?? v.until ?? 0) > now);
    return {
      counters: Object.fromEntries(live([...this.counters])),
      lists: { bans: live([...this.lists.bans]).map(([, e]) => e), suspensions: live([...this.lists.suspensions]).map(([, e]) => e) },
    };
  }
}

/**
 * The whole state in one JSON file, replaced atomically (write, then rename). Changes made in one
 * turn of the event loop are written together, before any answer that depends on them goes out, so
 * a supervisor killed with -9 loses nothing it has acted on.
 */
export class FileStore extends MemoryStore {
  private readonly path: string;
  private pending = false;

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

  protected override changed(): void {
    if (this.pending) return;
    this.pending = true;
    queueMicrotask(() => this.write());
  }

  override async flush(): Promise<void> {
    this.write();
  }

  private write(): void {
    this.pending = false;
    mkdirSync(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.tmp-${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify(this.snapshot())}\n`, { mode: 0o600 });
    renameSync(temporary, this.path);
  }
}

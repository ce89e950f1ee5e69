// Hot reload: the files relaybox reads (certificate, key, users, aliases, secrets) are watched; on a
// change, or on SIGHUP, the environment is validated again first. Bad content is logged and ignored
// (the running configuration stays); good content is rendered and Postfix and Dovecot reload in
// place (same master processes, open sessions are not cut).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { envReference, loadConfig, type Env } from './load.ts';
import type { Config } from './schema.ts';

/** Every variable that names a file (or a directory of files) relaybox reads. */
const WATCHED_VARIABLES = envReference().filter(({ name, watched }) => watched !== undefined || name.endsWith('_FILE')).map(({ name }) => name);

const POLL_MS = 1000;
/** Files are often written in several steps (key, then certificate): wait for them to settle. */
const SETTLE_MS = 700;

function fingerprint(path: string): string {
  try {
    // Kubernetes swaps a ..data symlink: reading the content (not watching an inode) sees that too.
    if (statSync(path).isDirectory()) {
      const hash = createHash('sha256');
      for (const name of readdirSync(path).filter((n) => !n.startsWith('.')).sort()) hash.update(`${name}\0${fingerprint(`${path}/${name}`)}\0`);
      return hash.digest('hex');
    }
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch (error) {
    return `missing:${(error as NodeJS.ErrnoException).code}`;
  }
}

export class Reloader {
  private readonly env: Env;
  private readonly apply: (config: Config) => Promise<void>;
  private readonly log: Logger;
  private readonly seen = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(env: Env, apply: (config: Config) => Promise<void>, log: Logger) {
    this.env = env;
    this.apply = apply;
    this.log = log;
  }

  private files(): string[] {
    return WATCHED_VARIABLES.map((name) => this.env[name]).filter((path): path is string => Boolean(path));
  }

  start(): void {
    for (const file of this.files()) this.seen.set(file, fingerprint(file));
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.pending);
  }

  private poll(): void {
    const changed = this.files().filter((file) => {
      const now = fingerprint(file);
      const before = this.seen.get(file);
      this.seen.set(file, now);
      return before !== now;
    });
    if (changed.length === 0) return;
    clearTimeout(this.pending);
    this.pending = setTimeout(() => void this.reload(`changed: ${changed.join(', ')}`), SETTLE_MS);
  }

  /** Validates the environment again and applies it; never throws. */
  reload(trigger: string): Promise<void> {
    this.running = this.running.then(async () => {
      const result = loadConfig(this.env);
      if (!result.ok) {
        this.log.error({ event: 'reload_rejected', trigger, errors: result.errors }, `reload refused, the running configuration stays: ${result.errors.join('; ')}`);
        return;
      }
      try {
        await this.apply(result.config);
        this.log.info({ event: 'reload', trigger }, `configuration reloaded (${trigger})`);
      } catch (error) {
        this.log.error({ event: 'reload_failed', trigger, error: (error as Error).message }, `reload failed: ${(error as Error).message}`);
      }
    });
    return this.running;
  }
}

// "Wait until the queue is empty": counted in the Postfix queue directory itself (not through the
// product's metrics), so "exactly once" and "nothing reached the upstream" are checked once Postfix
// has nothing left to deliver, instead of after a guessed pause.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait.ts';

/** Where a message waits in Postfix's queue until it has been delivered (or bounced). */
export const QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold'] as const;

function countBelow(dir: string): number {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  return entries.reduce((sum, entry) => sum + (entry.isDirectory() ? countBelow(join(dir, entry.name)) : 1), 0);
}

/** Queue files per queue (deferred/ and the others may be hashed into subdirectories). */
export function queueCounts(queueDir: string): Record<(typeof QUEUES)[number], number> {
  return Object.fromEntries(QUEUES.map((queue) => [queue, countBelow(join(queueDir, queue))])) as Record<(typeof QUEUES)[number], number>;
}

export function queuedCount(queueDir: string): number {
  return Object.values(queueCounts(queueDir)).reduce((a, b) => a + b, 0);
}

const execFileP = promisify(execFile);

/**
 * Waits until no message is left in the queue of the instance whose STATE_DIR is `stateDir`.
 * `flush`: ask Postfix to retry deferred mail now (postqueue -f) instead of waiting out its backoff.
 */
export async function waitQueueEmpty(stateDir: string, timeoutMs = 30_000, options: { flush?: boolean } = {}): Promise<void> {
  const queueDir = join(stateDir, 'queue');
  let lastFlush = 0;
  try {
    await waitFor(`the queue of ${stateDir} to be empty`, timeoutMs, async () => {
      if (queuedCount(queueDir) === 0) return true;
      if (options.flush && queueCounts(queueDir).deferred > 0 && Date.now() - lastFlush > 2000) {
        lastFlush = Date.now();
        await execFileP('postqueue', ['-c', join(stateDir, 'postfix'), '-f']).catch(() => undefined); // the master may be restarting
      }
      return undefined;
    }, 100);
  } catch (error) {
    throw new Error(`${(error as Error).message}; still queued: ${JSON.stringify(queueCounts(queueDir))}`);
  }
}

// "Wait until the queue is empty": the complete queue files counted in the Postfix queue directory
// itself (not through the product's metrics), so "exactly once" and "nothing reached the upstream"
// are checked once Postfix has nothing left to deliver, instead of after a guessed pause.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { filesBelow } from './files.ts';
import { waitFor } from './wait.ts';

/** Where a message waits in Postfix's queue until it has been delivered (or bounced). */
export const QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold'] as const;

/**
 * Postfix marks a queue file complete by giving it the owner-execute bit (cleanup, once it has the
 * whole message and before the client gets its 250); the queue manager ignores the others.
 */
function complete(path: string): boolean {
  try {
    return (statSync(path).mode & 0o100) !== 0;
  } catch {
    return false; // moved or removed meanwhile
  }
}

/** Complete queue files per queue (deferred/ and the others may be hashed into subdirectories). */
export function queueCounts(queueDir: string): Record<(typeof QUEUES)[number], number> {
  return Object.fromEntries(QUEUES.map((queue) => [queue, filesBelow(join(queueDir, queue)).filter(complete).length])) as Record<(typeof QUEUES)[number], number>;
}

/**
 * Incomplete files in incoming/ and maildrop/: a transaction in progress, or what a cleanup process
 * killed while writing left behind (no client got a 250 for it; Postfix never delivers it).
 */
export function incompleteQueueFiles(queueDir: string): string[] {
  return ['incoming', 'maildrop'].flatMap((queue) => filesBelow(join(queueDir, queue)).filter((path) => !complete(path)));
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
    throw new Error(`${(error as Error).message}; still queued: ${JSON.stringify(queueCounts(queueDir))} (and ${incompleteQueueFiles(queueDir).length} incomplete)`);
  }
}

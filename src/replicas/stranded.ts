// Mail a relay replica could neither deliver nor hand to a peer when it stopped stays in its queue,
// on its volume. A marker says how much, so that the next start of the same replica (it delivers its
// own queue then) keeps relaybox_queue_stranded_messages up until that queue is empty.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { countFiles } from '../host/files.ts';
import type { StatePaths } from '../render/paths.ts';

/** The queues that hold mail still to be delivered (hold/ is mail an operator put aside, not stranded). */
const WAITING = ['maildrop', 'incoming', 'active', 'deferred'] as const;

export function queuedMessages(paths: StatePaths): number {
  return WAITING.reduce((sum, queue) => sum + countFiles(`${paths.queue}/${queue}`), 0);
}

export function heldMessages(paths: StatePaths): number {
  return countFiles(`${paths.queue}/hold`);
}

export function markStranded(paths: StatePaths, count: number): void {
  if (count === 0) return rmSync(paths.strandedMarker, { force: true });
  writeFileSync(paths.strandedMarker, `${JSON.stringify({ count, at: new Date().toISOString() })}\n`, { mode: 0o644 });
}

/** What the last stop left (0 when nothing, or once the queue has been delivered since: the marker goes then). */
export function strandedMessages(paths: StatePaths): number {
  let count: number;
  try {
    count = Number((JSON.parse(readFileSync(paths.strandedMarker, 'utf8')) as { count?: unknown }).count) || 0;
  } catch {
    return 0;
  }
  const left = queuedMessages(paths);
  if (left === 0) {
    rmSync(paths.strandedMarker, { force: true });
    return 0;
  }
  return Math.min(count, left);
}

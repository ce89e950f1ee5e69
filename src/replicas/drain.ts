// A relay replica stopping (SIGTERM: a scale-down, a node drain, a rollout) strands no mail:
//  1. it closes its SMTP listeners (master.cf without them, `postfix reload`): nothing new comes in;
//  2. it delivers its own queue for up to DRAIN_SECONDS (less once nothing more can go);
//  3. it hands what is left to a peer's handoff listener for up to HANDOFF_SECONDS: everything is
//     routed to the peer, over TLS with the shared certificate pinned, as the handoff account; Postfix
//     removes a message only once the peer has answered 250, so none is lost and none sent twice;
//  4. what is still queued then stays on the volume, said loudly (`queue_stranded`, an error, and
//     relaybox_queue_stranded_messages); the replica delivers it itself when it starts again.
import { setTimeout as wait } from 'node:timers/promises';
import { command } from '../host/command.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { countFiles } from '../host/files.ts';
import type { StatePaths } from '../render/paths.ts';
import type { RenderInput } from '../render/types.ts';
import { answeringPeers, resolvePeers } from './peers.ts';
import { heldMessages, markStranded, queuedMessages } from './stranded.ts';

const POLL_MS = 250;
/** After a flush, how long nothing in flight (everything deferred again) means nothing more can go. */
const STUCK_MS = 1500;

export interface DrainHooks {
  /** Renders the daemons' files in this stopping mode and reloads Postfix. */
  apply: (drain: NonNullable<RenderInput['drain']>) => Promise<void>;
  log: Logger;
}

export interface DrainResult {
  delivered: number;
  handedOff: number;
  stranded: number;
}

const inFlight = (paths: StatePaths) => countFiles(`${paths.queue}/incoming`) + countFiles(`${paths.queue}/active`) + countFiles(`${paths.queue}/maildrop`);

async function flush(paths: StatePaths): Promise<void> {
  await command('postqueue', ['-c', paths.postfix, '-f'], { reject: false, timeoutMs: 10_000 });
}

/**
 * Flushes and waits until the queue is empty, or everything is deferred again for STUCK_MS (with
 * one more flush first: a message may have met a process still on the old configuration), or the
 * deadline passes. Returns what is left.
 */
async function deliverUntil(paths: StatePaths, deadline: number): Promise<number> {
  await flush(paths);
  let reflushed = false;
  let idleSince: number | undefined;
  for (;;) {
    const left = queuedMessages(paths);
    if (left === 0 || Date.now() >= deadline) return left;
    const now = Date.now();
    idleSince = inFlight(paths) === 0 ? (idleSince ?? now) : undefined;
    if (idleSince !== undefined && now - idleSince >= STUCK_MS) {
      if (reflushed) return left;
      reflushed = true;
      idleSince = undefined;
      await flush(paths);
    }
    await wait(POLL_MS);
  }
}

export async function drainRelay(config: Config, paths: StatePaths, hooks: DrainHooks): Promise<DrainResult> {
  const { log } = hooks;
  const { drainSeconds, handoffSeconds } = config.drain;
  await hooks.apply({});
  const queued = queuedMessages(paths);
  log.info({ event: 'draining', queued, seconds: drainSeconds }, `stopping: SMTP listeners closed; delivering the ${queued} queued message(s) for up to ${drainSeconds} s`);
  const afterDrain = queued === 0 ? 0 : await deliverUntil(paths, Date.now() + drainSeconds * 1000);
  const result: DrainResult = { delivered: queued - afterDrain, handedOff: 0, stranded: afterDrain };
  if (afterDrain === 0) {
    markStranded(paths, 0);
    return result;
  }

  const handoffDeadline = Date.now() + handoffSeconds * 1000;
  const peers = config.handoff ? await answeringPeers(await resolvePeers(config.handoff.peers, config.ports.handoff)) : [];
  let left = afterDrain;
  for (const peer of peers) {
    if (left === 0 || Date.now() >= handoffDeadline) break;
    log.info({ event: 'handoff_start', peer: `${peer.host}:${peer.port}`, queued: left }, `handing ${left} queued message(s) to the peer ${peer.host}:${peer.port}`);
    await hooks.apply({ handoffTo: peer });
    const before = left;
    left = await deliverUntil(paths, handoffDeadline);
    result.handedOff += before - left;
    log.info({ event: 'handoff', peer: `${peer.host}:${peer.port}`, handedOff: before - left, left }, `handed ${before - left} message(s) to ${peer.host}:${peer.port}; ${left} left`);
  }
  result.stranded = left;
  markStranded(paths, left);
  if (left > 0) {
    const why = !config.handoff ? 'no peers are configured (SINGLE_RELAY=yes)' : peers.length === 0 ? 'no peer answered on its handoff port' : 'the peers did not take it in time';
    log.error(
      { event: 'queue_stranded', count: left, held: heldMessages(paths), reason: why },
      `${left} message(s) stay in this replica's queue on its volume: ${why}. They are delivered when this replica starts again with the same volume (a StatefulSet scaled down keeps the volume: scale up again, or move the queue by hand)`,
    );
  }
  return result;
}

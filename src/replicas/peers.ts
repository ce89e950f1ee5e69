// The relay replicas a stopping relay may hand its queue to: HANDOFF_PEERS resolved to addresses
// (a headless Service name gives one per ready pod), this replica's own listener left out, and only
// those whose handoff listener greets.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ServiceAddress } from '../config/areas/replicas.ts';
import { probeGreeting } from '../protocol/probes.ts';

/** Every address of this host (the pod's own IP in Kubernetes, 127.0.0.1 and the rest on a test host). */
function ownAddresses(): Set<string> {
  const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
  return new Set(['127.0.0.1', '::1', ...addresses]);
}

/** HANDOFF_PEERS as addresses, without this replica's own handoff listener; in the given order, names expanded in place. */
export async function resolvePeers(peers: ServiceAddress[], ownPort: number): Promise<ServiceAddress[]> {
  const own = ownAddresses();
  const resolved: ServiceAddress[] = [];
  for (const peer of peers) {
    let addresses: string[];
    try {
      addresses = isIP(peer.host) !== 0 ? [peer.host] : (await lookup(peer.host, { all: true })).map((entry) => entry.address);
    } catch {
      continue; // a name that does not resolve (no ready peer behind a headless Service): nobody there
    }
    for (const host of addresses) {
      const self = own.has(host) && peer.port === ownPort;
      if (!self && !resolved.some((known) => known.host === host && known.port === peer.port)) resolved.push({ host, port: peer.port });
    }
  }
  return resolved;
}

/** The peers whose handoff listener gives its SMTP greeting now, in a random order (stopping replicas spread out). */
export async function answeringPeers(peers: ServiceAddress[]): Promise<ServiceAddress[]> {
  const results = await Promise.all(peers.map(async (peer) => ({ peer, ok: (await probeGreeting(peer.host, peer.port, 'smtp', false, 3000)).ok })));
  const answering = results.filter((result) => result.ok).map((result) => result.peer);
  for (let i = answering.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [answering[i], answering[j]] = [answering[j]!, answering[i]!];
  }
  return answering;
}

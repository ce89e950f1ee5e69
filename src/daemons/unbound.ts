// unbound: the DNSSEC-validating resolver for direct delivery (DANE, MTA-STS lookups). relaybox keeps
// accepting mail while it is down (deliveries wait, deferred as "dns"), so it does not hold up /ready.
import { rmSync } from 'node:fs';
import { commandName } from '../host/processes.ts';
import type { Logger } from 'pino';
import { askHeader, DNS_TYPES, probeDns } from '../protocol/dns-probe.ts';
import { pollUntil } from './daemon.ts';
import type { DaemonContext, DaemonDeclaration } from './declaration.ts';
import type { DaemonLogLine, Level } from './log-line.ts';

// "[1796190711] unbound[18187:0] notice: init module 0: validator"
const LINE = /^\[\d+\] unbound\[(\d+):\d+\] (\w+): (.*)$/;
const LEVELS: Record<string, Level> = { debug: 'debug', info: 'info', notice: 'info', warning: 'warn', error: 'error', fatal: 'fatal' };

export function parseUnboundLine(line: string): DaemonLogLine {
  const match = LINE.exec(line);
  if (!match) return { level: 'info', program: 'unbound', msg: line };
  const msg = match[3]!;
  // A bogus answer (broken signatures, a stripped chain): what a DANE failure looks like from here.
  const level = /validation failure|bogus/i.test(msg) ? 'warn' : (LEVELS[match[2]!] ?? 'info');
  return { level, program: 'unbound', pid: Number(match[1]), msg };
}

/** The zone the trust anchor is for: the root, or the owner of DNSSEC_TRUST_ANCHOR_FILE's first record. */
function anchorZone(records: string | undefined): string {
  return records?.split('\n').map((line) => line.trim()).find((line) => line !== '' && !line.startsWith(';'))?.split(/\s+/)[0] ?? '.';
}

/**
 * Once started: can it validate at all? Forwarders that strip DNSSEC records (or no DNS reachable)
 * make every answer bogus and every delivery wait; said once, plainly, instead of only per lookup.
 */
async function checkValidation(address: string, zone: string, log: Logger): Promise<void> {
  const answer = await askHeader(address, 53, zone, DNS_TYPES.DNSKEY, 10_000).catch(() => undefined);
  if (answer && answer.rcode === 0 && answer.ad) return;
  log.warn(
    { event: 'resolver_not_validating', zone },
    `the resolver cannot validate the trust anchor's zone ${zone} (no signed DNSKEY answer): every lookup fails and direct delivery waits. Use DNS_SERVERS that pass DNSSEC records, or RESOLVER=system`,
  );
}

export function unbound({ config, paths }: DaemonContext): DaemonDeclaration | undefined {
  if (!config.resolver || config.role === 'mailbox') return undefined;
  const address = config.resolver.address;
  return {
    name: 'unbound',
    needs: [],
    optional: true,
    command: 'unbound',
    args: ['-d', '-c', paths.unboundConf],
    parseLine: parseUnboundLine,
    prepare: () => rmSync(paths.unboundPid, { force: true }),
    waitStarted: (signal) => pollUntil(`the resolver on ${address}:53`, signal, 15_000, async () => (await probeDns(address, 53, 500)).ok),
    probes: [{ name: 'resolver', run: () => probeDns(address) }],
    // SIGHUP: re-read the configuration (forwarders, trust anchor); the cache starts afresh.
    reload: async (pid) => {
      if (pid !== undefined) process.kill(pid, 'SIGHUP');
    },
    // Only a cache in memory to lose.
    stop: { gracefully: async (pid) => void process.kill(pid, 'SIGTERM'), graceMs: 2000 },
    extraGroups: () => [],
    afterStart: (log) => checkValidation(address, anchorZone(config.resolver!.trustAnchor.records), log),
    orphan: { pidFile: paths.unboundPid, ours: (pid) => commandName(pid).includes(paths.unboundConf) },
  };
}

// Which smarthost delivered: Postfix's `relay=name[address]:port` on a delivery line, matched to the
// configured smarthosts (RELAY_HOST's failover list, then the routes'). Labels are the configured
// nexthops and their position in RELAY_HOST's list: bounded by the configuration, never an address
// of a sender or recipient. A delivery by any smarthost but the first is also an event.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import { hopKey, routeHops, type Route } from '../config/outbound-values.ts';

export interface ConfiguredSmarthost {
  /** As configured: `[host]:port` or `host:port`. */
  nexthop: string;
  host: string;
  port: number;
  /** 1-based position in its failover list, and the list's length. */
  position: number;
  of: number;
}

interface HostPortList {
  relay?: { hops: ReadonlyArray<{ host: string; port: number; noMx: boolean }> };
  relayRoutes: ReadonlyArray<Route>;
}

/** RELAY_HOST's smarthosts in failover order, then each route's not already listed. */
export function configuredSmarthosts(config: HostPortList): ConfiguredSmarthost[] {
  const hops = config.relay?.hops ?? [];
  const listed: ConfiguredSmarthost[] = hops.map((hop, index) => ({ nexthop: hopKey(hop), host: hop.host, port: hop.port, position: index + 1, of: hops.length }));
  for (const route of config.relayRoutes) {
    const list = routeHops(route);
    for (const [index, hop] of list.entries()) {
      if (!listed.some((known) => known.nexthop === hopKey(hop))) listed.push({ nexthop: hopKey(hop), host: hop.host, port: hop.port, position: index + 1, of: list.length });
    }
  }
  return listed;
}

/** The configured smarthost a `relay=name[address]:port` field names, if any. */
export function smarthostOf(relayField: string, smarthosts: ConfiguredSmarthost[]): ConfiguredSmarthost | undefined {
  const match = /^([^[\s]+)\[([^\]]+)\]:(\d+)$/.exec(relayField);
  if (!match) return undefined;
  const [, name = '', address = '', port = ''] = match;
  const candidates = [name.toLowerCase(), address.toLowerCase()];
  return smarthosts.find((hop) => hop.port === Number(port) && candidates.includes(hop.host));
}

export class SmarthostDeliveries {
  private readonly deliveries: Counter;
  private readonly smarthosts: ConfiguredSmarthost[];
  private readonly log: Logger | undefined;

  constructor(registry: Registry, smarthosts: ConfiguredSmarthost[], log?: Logger) {
    this.smarthosts = smarthosts;
    this.log = log;
    this.deliveries = new Counter({
      name: 'relaybox_smarthost_deliveries_total',
      help: 'Deliveries to the configured smarthosts by smarthost (as configured), its position in its failover list (RELAY_HOST or the route; 1 = first) and status; position > 1 means the ones before it did not take the mail.',
      labelNames: ['smarthost', 'position', 'status'],
      registers: [registry],
    });
  }

  /** Counts a postfix/smtp delivery line that names a configured smarthost. */
  observe(line: DaemonLogLine): void {
    if (this.smarthosts.length === 0 || line.program !== 'postfix/smtp') return;
    const status = /\bstatus=(sent|deferred|bounced)\b/.exec(line.msg)?.[1];
    const relay = /\brelay=(\S+?),/.exec(line.msg)?.[1];
    if (!status || !relay) return;
    const hop = smarthostOf(relay, this.smarthosts);
    if (!hop) return;
    this.deliveries.inc({ smarthost: hop.nexthop, position: String(hop.position), status });
    if (status === 'sent' && hop.position > 1) {
      const queueId = /^([0-9A-Za-z]+):/.exec(line.msg)?.[1];
      this.log?.warn(
        { event: 'smarthost_failover', smarthost: hop.nexthop, position: hop.position, of: hop.of, ...(queueId ? { queueId } : {}) },
        `${queueId ?? 'a message'}: delivered through smarthost ${hop.position} of ${hop.of} (${hop.nexthop}); the smarthosts before it did not take it (their connect or reply lines come first)`,
      );
    }
  }
}

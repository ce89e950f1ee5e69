// Client addresses that must never be banned, and the container's default gateways. Behind Docker's
// userland proxy (or rootless Docker's builtin port driver) every client arrives from the gateway:
// one ban would lock everyone out, and a TRUSTED_NETWORKS containing it would trust the Internet.
import type { Logger } from 'pino';
import { AddressSet, type Cidr } from '../config/networks.ts';

export { AddressSet, defaultGateways, plainAddress, trustedGateways } from '../config/networks.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import { PROBE_SOURCE } from '../protocol/probes.ts';

/** The loopback addresses local tools use, and the supervisor's probe source. */
const ALWAYS_EXEMPT = ['127.0.0.1', '::1', PROBE_SOURCE];

/** Never banned: 127.0.0.1, ::1, the probe source, and AUTH_BAN_EXEMPT. */
export function neverBanned(exempt: Cidr[]): AddressSet {
  return new AddressSet(exempt, ALWAYS_EXEMPT);
}

// "connect from unknown[172.18.0.1]" (Postfix), "... rip=172.18.0.1, ..." (Dovecot)
const CLIENT = /^connect from [^\s[]*\[([0-9a-fA-F.:]+)\]|\brip=([0-9a-fA-F.:]+)/;

/** Warns once when a client arrives from a gateway address. */
export class GatewayWatch {
  private readonly gateways: AddressSet;
  private readonly log: Logger;
  private warned = false;

  constructor(gateways: string[], log: Logger) {
    this.gateways = new AddressSet([], gateways);
    this.log = log;
  }

  isGateway(address: string): boolean {
    return this.gateways.has(address);
  }

  observe(line: DaemonLogLine): void {
    if (this.warned || this.gateways.size === 0) return;
    const match = CLIENT.exec(line.msg);
    const address = match?.[1] ?? match?.[2];
    if (!address || !this.gateways.has(address)) return;
    this.warned = true;
    this.log.warn(
      { event: 'clients_via_gateway', address },
      `a client arrived from ${address}, this container's default gateway: behind Docker's userland proxy every client shares that address, so it is never banned (a ban would lock everyone out) and per-address limits count everyone together. Publish the ports with NAT (userland-proxy: false) or use network_mode: host`,
    );
  }
}

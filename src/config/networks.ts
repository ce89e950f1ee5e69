// Address sets and this network namespace's default gateways. Behind Docker's userland proxy (or
// rootless Docker's builtin port driver) every client arrives from the gateway.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import type { Cidr } from './values.ts';

export type { Cidr };

/** `::ffff:192.0.2.1` is 192.0.2.1. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** A set of networks and single addresses that answers "is this address in it?". */
export class AddressSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(cidrs: Cidr[] = [], addresses: string[] = []) {
    for (const cidr of cidrs) this.list.addSubnet(cidr.address, cidr.prefix, cidr.family === 6 ? 'ipv6' : 'ipv4');
    for (const address of addresses) if (isIP(address)) this.list.addAddress(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
    this.size = cidrs.length + addresses.length;
  }

  has(address: string): boolean {
    const plain = plainAddress(address);
    const family = isIP(plain);
    return family !== 0 && this.list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Default-route gateways of this network namespace, from /proc/net/route and /proc/net/ipv6_route. */
export function defaultGateways(route = '/proc/net/route', route6 = '/proc/net/ipv6_route'): string[] {
  const found = new Set<string>();
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8').split('\n');
    } catch {
      return [];
    }
  };
  for (const line of read(route).slice(1)) {
    const [, destination, gateway, flags, , , , mask] = line.trim().split(/\s+/);
    // RTF_UP | RTF_GATEWAY on 0.0.0.0/0; the fields are little-endian hex.
    if (destination === '00000000' && mask === '00000000' && (parseInt(flags ?? '0', 16) & 0x3) === 0x3 && gateway && /^[0-9A-F]{8}$/i.test(gateway) && gateway !== '00000000') {
      found.add(Buffer.from(gateway, 'hex').reverse().join('.'));
    }
  }
  for (const line of read(route6)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length >= 10 && /^0{32}$/.test(fields[0]!) && fields[1] === '00' && /^[0-9a-f]{32}$/i.test(fields[4]!) && !/^0{32}$/.test(fields[4]!)) {
      found.add(fields[4]!.match(/.{4}/g)!.join(':'));
    }
  }
  return [...found];
}

/** Gateways that TRUSTED_NETWORKS would trust: every client relays without AUTH when they arrive through one. */
export function trustedGateways(trusted: Cidr[], gateways: string[]): string[] {
  const set = new AddressSet(trusted);
  return gateways.filter((gateway) => set.has(gateway));
}

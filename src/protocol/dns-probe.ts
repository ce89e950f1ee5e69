// Small DNS questions over UDP that node:dns cannot ask: whether an answer was DNSSEC-validated (the
// AD bit of a validating resolver), and a resolver's readiness (`localhost. A`, which unbound
// answers from its built-in local zone, so an offline host is not a resolver failure).
import { createSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { ProbeResult } from './probes.ts';

export const DNS_TYPES = { A: 1, MX: 15, TXT: 16, DNSKEY: 48, TLSA: 52 } as const;

export interface DnsHeader {
  rcode: number;
  /** Authenticated Data: the resolver validated the answer. */
  ad: boolean;
  answers: number;
}

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([Buffer.byteLength(label)]), Buffer.from(label)])), Buffer.from([0])]);
}

function query(id: number, name: string, type: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0120, 2); // recursion desired, authenticated data wanted (RFC 6840)
  header.writeUInt16BE(1, 4); // one question
  header.writeUInt16BE(1, 10); // EDNS0 with the DO bit
  const question = Buffer.alloc(4);
  question.writeUInt16BE(type, 0);
  question.writeUInt16BE(1, 2); // IN
  const opt = Buffer.from([0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]); // root, OPT, 4096 bytes, DO, no data
  return Buffer.concat([header, encodeName(name), question, opt]);
}

/** Asks `name`/`type` and returns the answer's header (rcode, AD bit, answer count). */
export function askHeader(address: string, port: number, name: string, type: number, timeoutMs = 5000): Promise<DnsHeader> {
  const id = randomInt(0, 0xffff);
  const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  return new Promise<DnsHeader>((resolve, reject) => {
    const done = (error: Error | undefined, header?: DnsHeader) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(header!);
    };
    const timer = setTimeout(() => done(new Error(`no answer from the resolver at ${address}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (error) => done(new Error(`the resolver at ${address}:${port}: ${error.message}`)));
    socket.on('message', (reply) => {
      if (reply.length < 12 || reply.readUInt16BE(0) !== id) return;
      const flags = reply.readUInt16BE(2);
      done(undefined, { rcode: flags & 0x000f, ad: (flags & 0x0020) !== 0, answers: reply.readUInt16BE(6) });
    });
    socket.send(query(id, name, type), port, address);
  });
}

export async function probeDns(address: string, port = 53, timeoutMs = 2000): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  const result = (error?: string): ProbeResult => ({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
  try {
    const { rcode } = await askHeader(address, port, 'localhost', DNS_TYPES.A, timeoutMs);
    return result(rcode === 0 ? undefined : `the resolver at ${address}:${port} answered rcode ${rcode} for localhost.`);
  } catch (error) {
    return result((error as Error).message);
  }
}

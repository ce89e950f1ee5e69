// Readiness of a DNS resolver: one UDP query for `localhost. A`, which unbound answers from its
// built-in local zone (no upstream needed, so an offline host is not a resolver failure).
import { createSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { ProbeResult } from './probes.ts';

function query(id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4); // one question
  const name = Buffer.from([9, ...Buffer.from('localhost'), 0]);
  return Buffer.concat([header, name, Buffer.from([0, 1, 0, 1])]); // A, IN
}

export function probeDns(address: string, port = 53, timeoutMs = 2000): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  const id = randomInt(0, 0xffff);
  const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  return new Promise<ProbeResult>((resolve) => {
    const done = (error?: string) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
    };
    const timer = setTimeout(() => done(`no answer from the resolver at ${address}:${port} within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (error) => done(`the resolver at ${address}:${port}: ${error.message}`));
    socket.on('message', (reply) => {
      if (reply.length < 12 || reply.readUInt16BE(0) !== id) return;
      const rcode = reply.readUInt16BE(2) & 0x000f;
      done(rcode === 0 ? undefined : `the resolver at ${address}:${port} answered rcode ${rcode} for localhost.`);
    });
    socket.send(query(id), port, address);
  });
}

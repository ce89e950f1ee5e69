// A milter readiness probe: the option negotiation that Postfix opens every milter session with.
import { connect } from 'node:net';
import type { ProbeResult } from './probes.ts';

/** SMFIC_OPTNEG: milter protocol 6, all actions, no protocol steps skipped. */
function optionNegotiation(): Buffer {
  const body = Buffer.alloc(13);
  body.write('O', 0);
  body.writeUInt32BE(6, 1);
  body.writeUInt32BE(0x1ff, 5);
  body.writeUInt32BE(0, 9);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** Connects to a milter's unix socket and expects its own option negotiation packet back. */
export function probeMilter(socketPath: string, timeoutMs = 3000): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    let received = Buffer.alloc(0);
    const done = (error?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write(optionNegotiation()));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 5) return;
      done(received.subarray(4, 5).toString() === 'O' ? undefined : `unexpected milter reply ${JSON.stringify(received.subarray(4, 5).toString())}`);
    });
    socket.on('error', (error) => done(error.message));
    socket.on('close', () => done('closed without an answer'));
  });
}

// The server side, for the milters the supervisor serves itself (abuse/header-from-milter.ts):
// packets are a 4-byte big-endian length, a command byte and its data; strings are NUL-terminated.

export interface MilterPacket {
  command: string;
  data: Buffer;
}

/** Postfix's packets are small (a header is at most ~100 kB with milter settings); anything larger is an error. */
const MAX_PACKET_BYTES = 1024 * 1024;

/** Cuts a byte stream into packets; throws on a packet no MTA sends. */
export class MilterReader {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): MilterPacket[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const packets: MilterPacket[] = [];
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length === 0 || length > MAX_PACKET_BYTES) throw new Error(`milter packet of ${length} bytes`);
      if (this.buffer.length < 4 + length) break;
      packets.push({ command: String.fromCharCode(this.buffer[4]!), data: this.buffer.subarray(5, 4 + length) });
      this.buffer = this.buffer.subarray(4 + length);
    }
    return packets;
  }
}

export function milterPacket(command: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head.write(command, 4, 'latin1');
  return Buffer.concat([head, data]);
}

/** The NUL-terminated strings of a packet's data. */
export function nulStrings(data: Buffer): string[] {
  const text = data.toString('utf8');
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** SMFIC_MACRO: the stage (a command letter) and its `{name}` → value pairs. */
export function milterMacros(data: Buffer): { stage: string; values: Map<string, string> } {
  const [names, ...rest] = [String.fromCharCode(data[0] ?? 0), ...nulStrings(data.subarray(1))];
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < rest.length; i += 2) values.set(rest[i]!.replace(/^\{(.*)\}$/, '$1'), rest[i + 1]!);
  return { stage: names, values };
}

/** Protocol steps a milter can ask the MTA to skip (SMFIP_NO*). */
export const SKIP = { connect: 0x1, helo: 0x2, mail: 0x4, rcpt: 0x8, body: 0x10, headers: 0x20, endOfHeaders: 0x40, unknown: 0x100, data: 0x200 } as const;

/** The answer to the MTA's SMFIC_OPTNEG: protocol 6, no actions (the message is never changed), these steps skipped. */
export function negotiationReply(offer: Buffer, skip: number): Buffer {
  const offered = offer.length >= 12 ? offer.readUInt32BE(8) : 0;
  const body = Buffer.alloc(12);
  body.writeUInt32BE(Math.min(6, offer.length >= 4 ? offer.readUInt32BE(0) : 6), 0);
  body.writeUInt32BE(0, 4);
  body.writeUInt32BE(skip & offered, 8);
  return milterPacket('O', body);
}

/** SMFIR_CONTINUE, SMFIR_ACCEPT, and SMFIR_REPLYCODE with an SMTP reply ("550 5.7.1 ..."). */
export const CONTINUE = milterPacket('c');
export const ACCEPT = milterPacket('a');
export function replyCode(reply: string): Buffer {
  return milterPacket('y', Buffer.from(`${reply.replace(/[\r\n\0%]/g, ' ')}\0`, 'utf8'));
}

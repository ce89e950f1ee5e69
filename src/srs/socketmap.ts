// Postfix's socketmap protocol (socketmap_table(5), Sendmail's): netstrings `<len>:<map> <key>,` in,
// `<len>:OK <value>,` / `NOTFOUND ` / `TEMP <reason>` out, several per connection, on a unix socket
// in the queue directory (0600, owned by Postfix's mail_owner: no other local user can ask it).
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProbeResult } from '../protocol/probes.ts';

/** The value for a key in one of the maps served, or undefined (NOTFOUND). */
export type SocketmapLookup = (map: string, key: string) => string | undefined;

const MAX_NETSTRING = 100_000;

const netstring = (text: string) => `${Buffer.byteLength(text)}:${text},`;

/** Complete netstrings at the start of a buffer, and what is left; undefined when malformed. */
export function parseNetstrings(buffer: Buffer): { items: string[]; rest: Buffer } | undefined {
  const items: string[] = [];
  let offset = 0;
  for (;;) {
    const colon = buffer.indexOf(0x3a, offset);
    if (colon < 0) return buffer.length - offset > 10 ? undefined : { items, rest: buffer.subarray(offset) };
    const lengthText = buffer.subarray(offset, colon).toString('latin1');
    if (!/^\d{1,6}$/.test(lengthText)) return undefined;
    const length = Number(lengthText);
    if (length > MAX_NETSTRING) return undefined;
    const end = colon + 1 + length;
    if (buffer.length < end + 1) return { items, rest: buffer.subarray(offset) };
    if (buffer[end] !== 0x2c) return undefined;
    items.push(buffer.subarray(colon + 1, end).toString('utf8'));
    offset = end + 1;
  }
}

export class SocketmapServer {
  private server: Server | undefined;
  private readonly connections = new Set<Socket>();
  private readonly options: { socketPath: string; owner: { uid: number; gid: number } | undefined; lookup: SocketmapLookup; log: Logger; name: string };

  constructor(options: SocketmapServer['options']) {
    this.options = options;
  }

  async start(): Promise<void> {
    const { socketPath, owner, log, name } = this.options;
    rmSync(socketPath, { force: true });
    const server = createServer((socket) => this.serve(socket));
    server.on('error', (error) => log.error({ event: 'socketmap_error', map: name, error: error.message }, `${name} lookup service: ${error.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (owner) chownSync(socketPath, owner.uid, owner.gid);
    chmodSync(socketPath, 0o600);
    this.server = server;
  }

  /** Listens afresh (the socket file was removed, say). */
  async restart(): Promise<void> {
    this.server?.close();
    this.server = undefined;
    await this.start();
    this.options.log.warn({ event: 'socketmap_restarted', map: this.options.name }, `${this.options.name} lookup service listening again on ${this.options.socketPath}`);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.connections) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseNetstrings(buffer);
      if (!parsed) {
        socket.end(netstring('PERM malformed request'));
        return;
      }
      buffer = parsed.rest;
      for (const request of parsed.items) socket.write(netstring(this.answer(request)));
    });
  }

  private answer(request: string): string {
    const space = request.indexOf(' ');
    if (space <= 0) return 'PERM expected "<map> <key>"';
    try {
      const value = this.options.lookup(request.slice(0, space), request.slice(space + 1));
      return value === undefined ? 'NOTFOUND ' : `OK ${value}`;
    } catch (error) {
      this.options.log.error({ event: 'socketmap_lookup_failed', map: this.options.name, error: (error as Error).message }, `${this.options.name} lookup failed: ${(error as Error).message}`);
      return 'TEMP lookup failed';
    }
  }
}

/** One lookup over the socket, as Postfix makes it. */
export function socketmapQuery(socketPath: string, map: string, key: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffer: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(netstring(`${map} ${key}`)));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseNetstrings(buffer);
      if (parsed && parsed.items.length > 0) {
        clearTimeout(timer);
        socket.end();
        resolve(parsed.items[0]!);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The readiness check: the service answers a lookup. */
export async function probeSocketmap(socketPath: string, map: string): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  const latencyMs = () => Math.round(performance.now() - started);
  try {
    const answer = await socketmapQuery(socketPath, map, 'probe@invalid');
    return answer.startsWith('OK') || answer.startsWith('NOTFOUND') ? { ok: true, latencyMs: latencyMs(), checkedAt } : { ok: false, error: `answered ${answer}`, latencyMs: latencyMs(), checkedAt };
  } catch (error) {
    return { ok: false, error: (error as Error).message, latencyMs: latencyMs(), checkedAt };
  }
}

// Postfix's socketmap protocol (socketmap_table(5)) on a unix socket in the queue directory: one
// netstring `<name> <key>` in, one netstring `OK <value>`, `NOTFOUND ` or `TEMP <reason>` out,
// several per connection. Postfix's smtp (user postfix, chrooted) reaches it as private/<name>.
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

export type SocketmapAnswer = { found: string } | { notFound: true } | { temporary: string };
export type SocketmapLookup = (name: string, key: string) => Promise<SocketmapAnswer>;

const MAX_REQUEST = 10_000;

export function netstring(text: string): string {
  return `${Buffer.byteLength(text)}:${text},`;
}

function encode(answer: SocketmapAnswer): string {
  if ('found' in answer) return netstring(`OK ${answer.found}`);
  if ('temporary' in answer) return netstring(`TEMP ${answer.temporary}`);
  return netstring('NOTFOUND ');
}

/** Splits complete netstrings off the front of `buffer`; undefined when the framing is broken. */
export function takeNetstrings(buffer: Buffer): { items: string[]; rest: Buffer } | undefined {
  const items: string[] = [];
  let rest = buffer;
  for (;;) {
    const colon = rest.indexOf(':');
    if (colon < 0) return rest.length > 10 ? undefined : { items, rest };
    const length = Number(rest.subarray(0, colon).toString());
    if (!/^\d+$/.test(rest.subarray(0, colon).toString()) || length > MAX_REQUEST) return undefined;
    if (rest.length < colon + 1 + length + 1) return { items, rest };
    if (rest[colon + 1 + length] !== 0x2c) return undefined;
    items.push(rest.subarray(colon + 1, colon + 1 + length).toString());
    rest = rest.subarray(colon + 1 + length + 1);
  }
}

export class SocketmapServer {
  private server: Server | undefined;
  private readonly connections = new Set<Socket>();

  private readonly options: { socketPath: string; owner: { uid: number; gid: number } | undefined; lookup: SocketmapLookup; log: Logger };

  constructor(options: SocketmapServer['options']) {
    this.options = options;
  }

  async start(): Promise<void> {
    rmSync(this.options.socketPath, { force: true });
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.options.log.error({ event: 'socketmap_error', error: error.message }, `socketmap: ${error.message}`));
    if (this.options.owner) chownSync(this.options.socketPath, this.options.owner.uid, this.options.owner.gid);
    chmodSync(this.options.socketPath, 0o600);
    this.server = server;
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
    let answering: Promise<void> = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      const taken = takeNetstrings(Buffer.concat([buffer, chunk]));
      if (!taken) return void socket.destroy();
      buffer = taken.rest;
      for (const item of taken.items) {
        const space = item.indexOf(' ');
        const [name, key] = space < 0 ? [item, ''] : [item.slice(0, space), item.slice(space + 1)];
        answering = answering.then(async () => {
          const answer = await this.options.lookup(name, key).catch((error: Error): SocketmapAnswer => ({ temporary: error.message.slice(0, 200) }));
          if (!socket.destroyed) socket.write(encode(answer));
        });
      }
    });
  }
}

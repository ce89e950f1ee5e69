// Postfix's socketmap protocol (socketmap_table(5), Sendmail's): netstrings `<len>:<map> <key>,` in,
// `<len>:OK <value>,` / `NOTFOUND ` / `TEMP <reason>` / `PERM <reason>` out, several per connection, on
// a unix socket in the queue directory (unix-server.ts: 0600, owned by Postfix's mail_owner). Serves
// the SRS map (srs/service.ts) and the MTA-STS policy map (outbound/index.ts).
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProbeResult } from './probes.ts';
import { UnixSocketServer, UnixSocketService } from './unix-server.ts';

export type SocketmapAnswer = { found: string } | { notFound: true } | { temporary: string };
/** The answer for a key in one of the maps served; a throw or rejection answers TEMP. */
export type SocketmapLookup = (map: string, key: string) => SocketmapAnswer | Promise<SocketmapAnswer>;

/** Requests are a map name and a key (an address or a domain): far below this. */
const MAX_NETSTRING = 10_000;

export function netstring(text: string): string {
  return `${Buffer.byteLength(text)}:${text},`;
}

function encode(answer: SocketmapAnswer): string {
  if ('found' in answer) return netstring(`OK ${answer.found}`);
  if ('temporary' in answer) return netstring(`TEMP ${answer.temporary}`);
  return netstring('NOTFOUND ');
}

/** Complete netstrings at the start of a buffer, and what is left; undefined when the framing is broken. */
export function parseNetstrings(buffer: Buffer): { items: string[]; rest: Buffer } | undefined {
  const items: string[] = [];
  let offset = 0;
  for (;;) {
    const colon = buffer.indexOf(0x3a, offset);
    if (colon < 0) return buffer.length - offset > 10 ? undefined : { items, rest: buffer.subarray(offset) };
    const lengthText = buffer.subarray(offset, colon).toString('latin1');
    if (!/^\d{1,5}$/.test(lengthText)) return undefined;
    const length = Number(lengthText);
    if (length > MAX_NETSTRING) return undefined;
    const end = colon + 1 + length;
    if (buffer.length < end + 1) return { items, rest: buffer.subarray(offset) };
    if (buffer[end] !== 0x2c) return undefined;
    items.push(buffer.subarray(colon + 1, end).toString('utf8'));
    offset = end + 1;
  }
}

export interface SocketmapServerOptions {
  socketPath: string;
  owner: { uid: number; gid: number } | undefined;
  lookup: SocketmapLookup;
  log: Logger;
  /** Names the service in log lines (`map` field, "<name> lookup service"). */
  name: string;
}

export class SocketmapServer extends UnixSocketService {
  protected readonly server: UnixSocketServer;
  private readonly options: SocketmapServerOptions;
  private readonly log: Logger;

  constructor(options: SocketmapServerOptions) {
    super();
    this.options = options;
    this.log = options.log.child({ map: options.name });
    this.server = new UnixSocketServer({
      socketPath: options.socketPath,
      owner: options.owner,
      event: 'socketmap',
      label: `${options.name} lookup service`,
      serve: (socket) => this.serve(socket),
      log: this.log,
    });
  }

  /** Answers each request of a connection in the order asked, however long each lookup takes. */
  private serve(socket: Socket): void {
    let buffer: Buffer = Buffer.alloc(0);
    let answering: Promise<void> = Promise.resolve();
    let refused = false;
    socket.on('data', (chunk: Buffer) => {
      if (refused) return;
      const parsed = parseNetstrings(Buffer.concat([buffer, chunk]));
      if (!parsed) {
        refused = true;
        answering = answering.then(() => void socket.end(netstring('PERM malformed request')));
        return;
      }
      buffer = parsed.rest;
      for (const request of parsed.items) {
        answering = answering.then(async () => {
          const answer = await this.answer(request);
          if (!socket.destroyed) socket.write(answer);
        });
      }
    });
  }

  private async answer(request: string): Promise<string> {
    const space = request.indexOf(' ');
    if (space <= 0) return netstring('PERM expected "<map> <key>"');
    try {
      return encode(await this.options.lookup(request.slice(0, space), request.slice(space + 1)));
    } catch (error) {
      const { name } = this.options;
      this.log.error({ event: 'socketmap_lookup_failed', error: (error as Error).message }, `${name} lookup failed: ${(error as Error).message}`);
      return netstring('TEMP lookup failed');
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

/** The readiness check: the service answers a lookup (OK or NOTFOUND). */
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

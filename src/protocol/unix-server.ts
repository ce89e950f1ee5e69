// A unix socket server in Postfix's queue directory for the services the supervisor answers itself
// (the sending-limits policy service, the header From: milter, the SRS and MTA-STS socketmaps): the
// socket is 0600 and owned by Postfix's mail_owner, so only Postfix's processes (and root) can connect.
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

export interface UnixServerOptions {
  socketPath: string;
  /** Who may connect (Postfix's mail_owner); undefined keeps the supervisor's own user. */
  owner: { uid: number; gid: number } | undefined;
  /** Names the service in log events (`<event>_error`, `<event>_restarted`) and messages. */
  event: string;
  label: string;
  serve: (socket: Socket) => void;
  log: Logger;
}

export class UnixSocketServer {
  private server: Server | undefined;
  private readonly connections = new Set<Socket>();
  private readonly options: UnixServerOptions;

  constructor(options: UnixServerOptions) {
    this.options = options;
  }

  async start(): Promise<void> {
    const { socketPath, owner, event, label, log } = this.options;
    rmSync(socketPath, { force: true });
    const server = createServer((socket) => {
      this.connections.add(socket);
      socket.on('close', () => this.connections.delete(socket));
      socket.on('error', () => socket.destroy());
      this.options.serve(socket);
    });
    server.on('error', (error) => log.error({ event: `${event}_error`, error: error.message }, `${label}: ${error.message}`));
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

  /** Listens afresh (the socket file was removed, say); open connections keep being served. */
  async restart(): Promise<void> {
    const old = this.server;
    this.server = undefined;
    old?.close();
    await this.start();
    this.options.log.warn({ event: `${this.options.event}_restarted` }, `${this.options.label} listening again on ${this.options.socketPath}`);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.connections) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A service answered on a UnixSocketServer: it listens, listens afresh and stops as its server does. */
export abstract class UnixSocketService {
  protected abstract readonly server: UnixSocketServer;

  start(): Promise<void> {
    return this.server.start();
  }

  /** Listens afresh (the socket file was removed, say); open connections keep being served. */
  restart(): Promise<void> {
    return this.server.restart();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

// A real SMTP upstream on loopback for the outbound tests (node:net + node:tls): it advertises
// STARTTLS (or, with implicitTls, speaks TLS from the first byte, as on port 465) and, after TLS
// (or before too, with authInClear), AUTH PLAIN LOGIN; it can require AUTH before MAIL; it can pick
// its certificate by the SNI name the client sends, as shared front ends do; it records every command
// with whether TLS was up, every SNI name and credential it was given, and every message it accepted.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { freePort } from './instance.ts';
import type { KeyPair } from './test-ca.ts';

export interface UpstreamCommand {
  connection: number;
  tls: boolean;
  line: string;
}

export interface UpstreamMessage {
  connection: number;
  user?: string;
  from: string;
  to: string[];
  data: string;
}

export interface UpstreamOptions {
  /** The certificate presented after STARTTLS (the default one when byServername is set). */
  certificate: KeyPair;
  /** TLS from the first byte (SMTPS, RFC 8314): no plaintext greeting, no STARTTLS. */
  implicitTls?: boolean;
  /** Certificates presented only to a client that sends this name as SNI. */
  byServername?: Record<string, KeyPair>;
  /** Refuse MAIL before a successful AUTH (530 5.7.0), as providers do. */
  requireAuth?: boolean;
  /** Accepted credentials (any when unset). */
  credentials?: { username: string; password: string };
  /**
   * Advertise and accept AUTH before STARTTLS too, as a careless provider would: then only the
   * relay's own policy keeps the password off the wire in clear.
   */
  authInClear?: boolean;
  /** Recipients refused with 550 5.1.1 (to make bounces). */
  rejectRecipients?: RegExp;
  name?: string;
  /** Where to listen (default 127.0.0.1 on a free port); e.g. 127.0.0.46:465 for the port that means implicit TLS. */
  listen?: { host: string; port: number };
  /** Offers no STARTTLS (an attacker on the path stripped it). */
  noStartTls?: boolean;
  /** Greets with this reply (e.g. `421 4.3.2 Service not available`) and hangs up, as an overloaded server does. */
  refuseGreeting?: string;
  /** Answers MAIL with this reply (e.g. `451 4.3.0 Try again later`) instead of 250. */
  refuseMail?: string;
}

export class Upstream {
  readonly port: number;
  readonly host: string;
  readonly commands: UpstreamCommand[] = [];
  readonly messages: UpstreamMessage[] = [];
  /** Every password this upstream was sent, decoded, with whether TLS was up. */
  readonly passwords: Array<{ user: string; password: string; tls: boolean }> = [];
  /** The SNI name of every TLS handshake (undefined: none sent). */
  readonly servernames: Array<string | undefined> = [];
  private readonly server: Server;
  private readonly options: UpstreamOptions;
  private connections = 0;
  private readonly sockets = new Set<Socket>();
  private readonly sniContext: (servername: string) => ReturnType<typeof createSecureContext>;

  private constructor(host: string, port: number, options: UpstreamOptions) {
    this.host = host;
    this.port = port;
    this.options = options;
    const contextOf = (pair: KeyPair) => createSecureContext({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) });
    const context = contextOf(options.certificate);
    const named = new Map(Object.entries(options.byServername ?? {}).map(([name, pair]) => [name.toLowerCase(), contextOf(pair)]));
    this.sniContext = (servername) => {
      this.servernames.push(servername || undefined);
      return named.get(servername.toLowerCase()) ?? context;
    };
    this.server = createServer((socket) => this.session(socket, ++this.connections, context));
  }

  static async start(options: UpstreamOptions): Promise<Upstream> {
    const upstream = new Upstream(options.listen?.host ?? '127.0.0.1', options.listen?.port ?? (await freePort()), options);
    await new Promise<void>((resolve, reject) => {
      upstream.server.once('error', reject);
      upstream.server.listen(upstream.port, upstream.host, resolve);
    });
    return upstream;
  }

  /** Whether any AUTH command reached this upstream (with or without TLS). */
  get sawAuth(): boolean {
    return this.commands.some((c) => /^AUTH\b/i.test(c.line));
  }

  private session(plain: Socket, connection: number, context: ReturnType<typeof createSecureContext>): void {
    let socket: Socket | TLSSocket = plain;
    let tls = false;
    let buffer = '';
    let user: string | undefined;
    let envelope: { from: string; to: string[] } | undefined;
    let data: string[] | undefined;
    let login: { step: 'user' | 'password'; user?: string } | undefined;
    const name = this.options.name ?? 'upstream.test';
    this.sockets.add(plain);
    plain.on('close', () => this.sockets.delete(plain));
    const send = (text: string) => socket.write(`${text}\r\n`);
    const startTls = (onSecure?: () => void) => {
      const servernameSeen = new Set<string>();
      socket = new TLSSocket(plain, {
        isServer: true,
        secureContext: context,
        SNICallback: (servername, done) => {
          servernameSeen.add(servername);
          done(null, this.sniContext(servername));
        },
      });
      socket.on('error', () => plain.destroy());
      socket.on('secure', () => {
        tls = true;
        if (servernameSeen.size === 0) this.servernames.push(undefined);
        onSecure?.();
      });
      socket.setEncoding('utf8');
      socket.on('data', onData);
      buffer = '';
    };
    const authenticated = (username: string, password: string) => {
      this.passwords.push({ user: username, password, tls });
      const wanted = this.options.credentials;
      if (wanted && (wanted.username !== username || wanted.password !== password)) return send('535 5.7.8 Authentication credentials invalid');
      user = username;
      send('235 2.7.0 Authentication successful');
    };
    const handle = (line: string) => {
      if (data) {
        if (line === '.') {
          this.messages.push({ connection, ...(user ? { user } : {}), from: envelope?.from ?? '', to: envelope?.to ?? [], data: data.join('\r\n') });
          data = undefined;
          envelope = undefined;
          return send(`250 2.0.0 Ok: queued as ${name}-${connection}-${this.messages.length}`);
        }
        data.push(line.startsWith('..') ? line.slice(1) : line);
        return;
      }
      if (login) {
        const decoded = Buffer.from(line, 'base64').toString('utf8');
        this.commands.push({ connection, tls, line: 'AUTH LOGIN (continued)' });
        if (login.step === 'user') {
          login = { step: 'password', user: decoded };
          return send(`334 ${Buffer.from('Password:').toString('base64')}`);
        }
        const username = login.user ?? '';
        login = undefined;
        return authenticated(username, decoded);
      }
      this.commands.push({ connection, tls, line });
      const [verb = '', ...rest] = line.split(' ');
      switch (verb.toUpperCase()) {
        case 'EHLO':
        case 'HELO':
        case 'LHLO': // LMTP's greeting: the same server stands for an LMTP peer
          return send(
            [
              `250-${name}`, '250-PIPELINING', '250-SIZE 10240000',
              ...(tls ? [] : this.options.noStartTls ? ['250-ENHANCEDSTATUSCODES'] : ['250-STARTTLS']),
              ...(tls || this.options.authInClear ? ['250-AUTH PLAIN LOGIN'] : []),
              '250 8BITMIME',
            ].join('\r\n'),
          );
        case 'STARTTLS':
          if (tls || this.options.implicitTls) return send('503 5.5.1 TLS already active');
          if (this.options.noStartTls) return send('502 5.5.2 Error: command not recognized');
          send('220 2.0.0 Ready to start TLS');
          plain.removeAllListeners('data');
          startTls();
          return;
        case 'AUTH': {
          if (!tls && !this.options.authInClear) return send('538 5.7.11 Encryption required for requested authentication mechanism');
          const mechanism = (rest[0] ?? '').toUpperCase();
          if (mechanism === 'PLAIN' && rest[1]) {
            const [, username = '', password = ''] = Buffer.from(rest[1], 'base64').toString('utf8').split('\0');
            return authenticated(username, password);
          }
          if (mechanism === 'LOGIN') {
            login = { step: 'user' };
            return send(`334 ${Buffer.from('Username:').toString('base64')}`);
          }
          return send('504 5.5.4 Unrecognized authentication type');
        }
        case 'MAIL':
          if (this.options.requireAuth && !user) return send('530 5.7.0 Authentication required');
          if (this.options.refuseMail) return send(this.options.refuseMail);
          envelope = { from: /<([^>]*)>/.exec(line)?.[1] ?? '', to: [] };
          return send('250 2.1.0 Ok');
        case 'RCPT':
          if (!envelope) return send('503 5.5.1 Need MAIL first');
          if (this.options.rejectRecipients?.test(/<([^>]*)>/.exec(line)?.[1] ?? '')) return send('550 5.1.1 No such user here');
          envelope.to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          return send('250 2.1.5 Ok');
        case 'DATA':
          if (!envelope || envelope.to.length === 0) return send('503 5.5.1 Need RCPT first');
          data = [];
          return send('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          envelope = undefined;
          return send('250 2.0.0 Ok');
        case 'NOOP':
          return send('250 2.0.0 Ok');
        case 'QUIT':
          send('221 2.0.0 Bye');
          return socket.end();
        default:
          return send('502 5.5.2 Error: command not recognized');
      }
    };
    const onData = (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        handle(line);
      }
    };
    plain.on('error', () => plain.destroy());
    const refusal = this.options.refuseGreeting;
    if (refusal) {
      this.commands.push({ connection, tls: false, line: `(greeted ${refusal})` });
      if (this.options.implicitTls) return startTls(() => (socket.write(`${refusal}\r\n`), socket.end()));
      return void plain.end(`${refusal}\r\n`);
    }
    if (this.options.implicitTls) return startTls(() => send(`220 ${name} ESMTP test upstream`));
    plain.setEncoding('utf8');
    plain.on('data', onData);
    send(`220 ${name} ESMTP test upstream`);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// A small SMTP client for tests: raw commands, exact replies, STARTTLS, implicit TLS, AUTH.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket, type ConnectionOptions } from 'node:tls';

export interface Reply {
  code: number;
  /** Enhanced status code such as 5.7.1, when the server gave one. */
  enhanced?: string;
  lines: string[];
  text: string;
}

export class SmtpClient {
  private socket: Socket | TLSSocket;
  private buffer = '';
  private waiting: Array<() => void> = [];
  private closed = false;

  private constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => {
      this.closed = true;
      this.notify();
    });
  }

  private notify(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  static async connect(port: number, options: { host?: string; localAddress?: string; tls?: boolean; tlsOptions?: ConnectionOptions; timeoutMs?: number } = {}): Promise<{ client: SmtpClient; greeting: Reply }> {
    const host = options.host ?? '127.0.0.1';
    const raw = connectTcp({ host, port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    const socket = options.tls ? connectTls({ socket: raw, rejectUnauthorized: false, ...options.tlsOptions }) : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    const greeting = await client.read(options.timeoutMs);
    return { client, greeting };
  }

  get tlsSocket(): TLSSocket | undefined {
    return 'encrypted' in this.socket ? (this.socket as TLSSocket) : undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reads one complete (possibly multi-line) reply. */
  async read(timeoutMs = 15_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buffer.split('\r\n');
      const end = lines.findIndex((line) => /^\d{3} /.test(line) || /^\d{3}$/.test(line));
      if (end >= 0) {
        const replyLines = lines.slice(0, end + 1);
        this.buffer = lines.slice(end + 1).join('\r\n');
        const code = Number(replyLines[end]!.slice(0, 3));
        const text = replyLines.map((line) => line.slice(4)).join('\n');
        const enhanced = /^([245]\.\d{1,3}\.\d{1,3})\b/.exec(replyLines[end]!.slice(4))?.[1];
        return { code, lines: replyLines, text, ...(enhanced ? { enhanced } : {}) };
      }
      if (this.closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete reply within ${timeoutMs} ms; got ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  write(data: string): void {
    this.socket.write(data);
  }

  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read(timeoutMs);
  }

  async ehlo(name = 'client.example'): Promise<Reply> {
    return this.cmd(`EHLO ${name}`);
  }

  /** STARTTLS and a fresh EHLO; returns the EHLO reply after TLS. */
  async starttls(tlsOptions: ConnectionOptions = {}): Promise<Reply> {
    const reply = await this.cmd('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.code} ${reply.text}`);
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = connectTls({ socket: plain, rejectUnauthorized: false, ...tlsOptions });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
    return this.ehlo();
  }

  async authPlain(user: string, password: string, authzid = ''): Promise<Reply> {
    return this.cmd(`AUTH PLAIN ${Buffer.from(`${authzid}\0${user}\0${password}`).toString('base64')}`);
  }

  async authLogin(user: string, password: string): Promise<Reply> {
    const first = await this.cmd('AUTH LOGIN');
    if (first.code !== 334) return first;
    const second = await this.cmd(Buffer.from(user).toString('base64'));
    if (second.code !== 334) return second;
    return this.cmd(Buffer.from(password).toString('base64'));
  }

  /** MAIL, RCPT(s), DATA; stops at the first refusal and returns every reply so far. */
  async send(from: string, to: string[], body: string): Promise<{ replies: Reply[]; final: Reply }> {
    const replies: Reply[] = [];
    const step = async (line: string) => {
      const reply = await this.cmd(line);
      replies.push(reply);
      return reply;
    };
    let reply = await step(`MAIL FROM:<${from}>`);
    if (reply.code !== 250) return { replies, final: reply };
    for (const rcpt of to) {
      reply = await step(`RCPT TO:<${rcpt}>`);
      if (reply.code !== 250) return { replies, final: reply };
    }
    reply = await step('DATA');
    if (reply.code !== 354) return { replies, final: reply };
    const dotted = body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.write(`${dotted}${dotted.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    reply = await this.read();
    replies.push(reply);
    return { replies, final: reply };
  }

  async quit(): Promise<void> {
    if (this.closed) return;
    try {
      await this.cmd('QUIT', 3000);
    } catch {
      // already gone
    }
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function message(from: string, to: string, subject: string, body = 'Hello from the relaybox tests.'): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W+/g, '-')}-${Date.now()}@client.example>\r\n\r\n${body}\r\n`;
}

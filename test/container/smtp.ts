// A tiny SMTP client for the container tests (node:net + node:tls, no dependencies).
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  code: number;
  /** All reply lines joined with \n, codes included. */
  text: string;
}

export class SmtpClient {
  private socket: net.Socket | tls.TLSSocket;
  private buffer = '';
  private lines: string[] = [];
  private waiter: (() => void) | undefined;
  private error: Error | undefined;
  private closed = false;

  private constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  /** Connects and reads the greeting. `implicitTls` for port 465. */
  static async connect(port: number, opts: { host?: string; implicitTls?: boolean; timeoutMs?: number } = {}): Promise<{ client: SmtpClient; greeting: Reply }> {
    const host = opts.host ?? '127.0.0.1';
    const socket = await new Promise<net.Socket | tls.TLSSocket>((resolve, reject) => {
      const s = opts.implicitTls
        ? tls.connect({ host, port, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
        : net.connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    socket.setTimeout(opts.timeoutMs ?? 30_000);
    const client = new SmtpClient(socket);
    const greeting = await client.read();
    return { client, greeting };
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, i).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(i + 1);
      }
      this.wake();
    });
    socket.on('timeout', () => {
      this.error = new Error('SMTP timeout');
      socket.destroy();
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Reads one (possibly multi-line) reply. */
  async read(): Promise<Reply> {
    const got: string[] = [];
    for (;;) {
      while (this.lines.length > 0) {
        const line = this.lines.shift()!;
        got.push(line);
        if (/^\d{3}(?: |$)/.test(line)) return { code: Number(line.slice(0, 3)), text: got.join('\n') };
      }
      if (this.error) throw this.error;
      if (this.closed) throw new Error(`SMTP connection closed${got.length ? ` after: ${got.join(' | ')}` : ''}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  async cmd(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  async ehlo(name = 'client.relaybox.test'): Promise<Reply> {
    return this.cmd(`EHLO ${name}`);
  }

  /** STARTTLS, then upgrades the connection (certificate not verified: it is self-signed). */
  async starttls(): Promise<Reply> {
    const reply = await this.cmd('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket as net.Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('timeout');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    secure.setTimeout(30_000);
    this.socket = secure;
    this.attach(secure);
    return reply;
  }

  async authPlain(user: string, password: string): Promise<Reply> {
    return this.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`);
  }

  /** MAIL FROM, RCPT TO, DATA; returns the first failing reply or the reply to the final dot. */
  async send(from: string, to: string[], message: string): Promise<Reply> {
    let reply = await this.cmd(`MAIL FROM:<${from}>`);
    if (reply.code !== 250) return reply;
    for (const rcpt of to) {
      reply = await this.cmd(`RCPT TO:<${rcpt}>`);
      if (reply.code !== 250) return reply;
    }
    reply = await this.cmd('DATA');
    if (reply.code !== 354) return reply;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    return this.cmd(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`);
  }

  async quit(): Promise<void> {
    try {
      await this.cmd('QUIT');
    } catch {
      /* closed already */
    }
    this.socket.destroy();
  }

  close(): void {
    this.socket.destroy();
  }
}

export function message(opts: { from: string; to: string; subject: string; body?: string }): string {
  return [
    `From: <${opts.from}>`,
    `To: <${opts.to}>`,
    `Subject: ${opts.subject}`,
    `Message-ID: <${opts.subject.replace(/[^A-Za-z0-9.-]/g, '-')}@relaybox.test>`,
    `Date: ${new Date().toUTCString()}`,
    '',
    opts.body ?? `Test message ${opts.subject}.`,
    '',
  ].join('\n');
}

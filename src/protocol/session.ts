// Client sessions for SMTP and IMAP: line reading, implicit TLS and the STARTTLS upgrade. Used by
// the selftest and by the tests' clients, so both speak to the daemons the same way.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls';

export interface OpenOptions {
  host?: string;
  /** Source address (on loopback: one of 127/8, e.g. to stay clear of per-address limits). */
  localAddress?: string;
  tls?: boolean;
  tlsOptions?: ConnectionOptions;
  timeoutMs?: number;
}

/** A buffered connection: `until` waits for a complete unit (reply, tagged response) in the buffer. */
class LineSession {
  protected socket: Socket | TLSSocket;
  protected buffer = '';
  private waiting: Array<() => void> = [];
  private closed = false;

  protected constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  protected static async openSocket(port: number, options: OpenOptions): Promise<Socket | TLSSocket> {
    const raw = connectTcp({ host: options.host ?? '127.0.0.1', port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    const socket = options.tls ? connectTls({ socket: raw, rejectUnauthorized: false, ...options.tlsOptions }) : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return socket;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.notify();
    });
    const end = () => {
      this.closed = true;
      this.notify();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  private notify(): void {
    for (const wake of this.waiting.splice(0)) wake();
  }

  get tlsSocket(): TLSSocket | undefined {
    return 'encrypted' in this.socket ? (this.socket as TLSSocket) : undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits until `take(buffer)` returns the length of a complete unit, then removes and returns it. */
  protected async until(what: string, take: (buffer: string) => number | undefined, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const length = take(this.buffer);
      if (length !== undefined) {
        const unit = this.buffer.slice(0, length);
        this.buffer = this.buffer.slice(length);
        return unit;
      }
      if (this.closed) throw new Error(`connection closed before ${what}; unparsed: ${JSON.stringify(this.buffer.slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.buffer.slice(0, 300))}`);
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

  /** Hands the plaintext socket to TLS (after the server said go ahead). */
  protected async upgradeTls(tlsOptions: ConnectionOptions = {}): Promise<void> {
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
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface Reply {
  code: number;
  /** Enhanced status code such as 5.7.1, when the server gave one. */
  enhanced?: string;
  lines: string[];
  /** The reply's text without the codes, lines joined with \n. */
  text: string;
}

export class SmtpSession extends LineSession {
  static async connect(port: number, options: OpenOptions = {}): Promise<{ client: SmtpSession; greeting: Reply }> {
    const client = new SmtpSession(await LineSession.openSocket(port, options));
    const greeting = await client.read(options.timeoutMs);
    return { client, greeting };
  }

  /** Reads one complete (possibly multi-line) reply. */
  async read(timeoutMs = 15_000): Promise<Reply> {
    const unit = await this.until(
      'a complete reply',
      (buffer) => {
        const match = /(?:^|\r\n)\d{3}(?: [^\r\n]*)?\r\n/.exec(buffer);
        return match ? match.index + match[0].length : undefined;
      },
      timeoutMs,
    );
    const lines = unit.split('\r\n').filter((line) => line !== '');
    const last = lines.at(-1)!;
    const enhanced = /^([245]\.\d{1,3}\.\d{1,3})\b/.exec(last.slice(4))?.[1];
    return { code: Number(last.slice(0, 3)), lines, text: lines.map((line) => line.slice(4)).join('\n'), ...(enhanced ? { enhanced } : {}) };
  }

  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read(timeoutMs);
  }

  ehlo(name = 'client.example'): Promise<Reply> {
    return this.cmd(`EHLO ${name}`);
  }

  /** STARTTLS and a fresh EHLO; returns the EHLO reply after TLS. */
  async starttls(tlsOptions: ConnectionOptions = {}, ehloName?: string): Promise<Reply> {
    const reply = await this.cmd('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.code} ${reply.text}`);
    await this.upgradeTls(tlsOptions);
    return this.ehlo(ehloName);
  }

  authPlain(user: string, password: string, authzid = ''): Promise<Reply> {
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
    if (!this.isClosed) await this.cmd('QUIT', 3000).catch(() => undefined);
    this.destroy();
  }
}

export class ImapSession extends LineSession {
  private tag = 0;

  /**
   * `localAddress` other than 127.0.0.1 matters for plaintext tests: Dovecot treats a connection whose
   * remote address equals its local one as secured, as if it were TLS.
   */
  static async connect(port: number, options: OpenOptions = {}): Promise<{ client: ImapSession; greeting: string }> {
    const client = new ImapSession(await LineSession.openSocket(port, options));
    const greeting = await client.until('a greeting', (buffer) => (buffer.includes('\r\n') ? buffer.indexOf('\r\n') + 2 : undefined), options.timeoutMs ?? 15_000);
    return { client, greeting };
  }

  /** Sends a tagged command; resolves with everything up to and including the tagged status line. */
  async command(line: string, timeoutMs = 15_000): Promise<{ status: 'OK' | 'NO' | 'BAD'; text: string }> {
    const tag = `t${++this.tag}`;
    this.write(`${tag} ${line}\r\n`);
    const status = new RegExp(`(?:^|\\r\\n)${tag} (OK|NO|BAD)[^\\r]*\\r\\n`);
    const text = await this.until(`the answer to ${tag}`, (buffer) => {
      const match = status.exec(buffer);
      return match ? match.index + match[0].length : undefined;
    }, timeoutMs);
    return { status: status.exec(text)![1] as 'OK' | 'NO' | 'BAD', text };
  }

  async starttls(tlsOptions: ConnectionOptions = {}): Promise<void> {
    const reply = await this.command('STARTTLS');
    if (reply.status !== 'OK') throw new Error(`STARTTLS refused: ${reply.text}`);
    await this.upgradeTls(tlsOptions);
  }

  login(user: string, password: string) {
    return this.command(`LOGIN "${user}" "${password.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);
  }

  /** The full text of every message in INBOX. */
  async inbox(): Promise<string[]> {
    const select = await this.command('SELECT INBOX');
    if (select.status !== 'OK') throw new Error(select.text);
    const count = Number(/\* (\d+) EXISTS/.exec(select.text)?.[1] ?? 0);
    if (count === 0) return [];
    const fetched = await this.command(`FETCH 1:${count} BODY.PEEK[]`);
    return fetched.text.split(/\r\n\* \d+ FETCH /);
  }

  async logout(): Promise<void> {
    await this.command('LOGOUT').catch(() => undefined);
    this.destroy();
  }
}

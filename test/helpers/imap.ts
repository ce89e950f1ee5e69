// A minimal IMAP client for tests: greeting, tagged commands, STARTTLS, LOGIN, message fetch.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';

export class ImapClient {
  private socket: Socket | TLSSocket;
  private buffer = '';
  private tag = 0;
  private waiting: Array<() => void> = [];

  private constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (const wake of this.waiting.splice(0)) wake();
    });
    socket.on('error', () => undefined);
  }

  /**
   * `localAddress` other than 127.0.0.1 matters for plaintext tests: Dovecot treats a connection whose
   * remote address equals its local one as secured, as if it were TLS.
   */
  static async connect(port: number, tls: boolean, localAddress?: string): Promise<{ client: ImapClient; greeting: string }> {
    const raw = connectTcp({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    const socket = tls ? connectTls({ socket: raw, rejectUnauthorized: false }) : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new ImapClient(socket);
    const greeting = await client.until((text) => (text.includes('\r\n') ? text.slice(0, text.indexOf('\r\n') + 2) : undefined));
    return { client, greeting };
  }

  private async until(done: (buffer: string) => string | undefined, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = done(this.buffer);
      if (result !== undefined) {
        this.buffer = this.buffer.slice(result.length);
        return result;
      }
      if (Date.now() > deadline) throw new Error(`IMAP: no answer; buffer ${JSON.stringify(this.buffer.slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a tagged command; resolves with everything up to and including the tagged status line. */
  async command(line: string): Promise<{ status: 'OK' | 'NO' | 'BAD'; text: string }> {
    const tag = `t${++this.tag}`;
    this.socket.write(`${tag} ${line}\r\n`);
    const text = await this.until((buffer) => {
      const match = new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r]*\\r\\n`).exec(buffer);
      return match ? buffer.slice(0, match.index + match[0].length) : undefined;
    });
    const status = new RegExp(`${tag} (OK|NO|BAD)`).exec(text)![1] as 'OK' | 'NO' | 'BAD';
    return { status, text };
  }

  async starttls(): Promise<void> {
    const reply = await this.command('STARTTLS');
    if (reply.status !== 'OK') throw new Error(`STARTTLS refused: ${reply.text}`);
    this.socket.removeAllListeners('data');
    const secure = connectTls({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
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
    return fetched.text.split(/\r\n\* \d+ FETCH /).map((part) => part);
  }

  async logout(): Promise<void> {
    await this.command('LOGOUT').catch(() => undefined);
    this.socket.destroy();
  }
}

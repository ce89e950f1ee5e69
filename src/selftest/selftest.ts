// The tutorial's manual test, done for the operator against the running instance: EHLO, STARTTLS,
// a wrong password refused, an unauthenticated relay refused, an authenticated transaction that
// reaches RCPT and is reset before DATA (nothing is sent).
import { randomBytes, randomInt } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { Config } from '../config/schema.ts';

export interface SelftestStep {
  name: string;
  status: 'ok' | 'fail' | 'skip';
  detail: string;
}

/** Where the outside recipient of the checks lives: reserved, never delivered to (RSET before DATA). */
const OUTSIDE = 'relaybox-selftest@example.com';

class Session {
  private buffer = '';
  private socket: Socket;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  private listen(socket: Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(host: string, port: number, tls: boolean, localAddress?: string): Promise<Session> {
    const raw = connectTcp({ host, port, ...(localAddress ? { localAddress } : {}) });
    const socket = tls ? connectTls({ socket: raw, rejectUnauthorized: false }) : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new Session(socket);
  }

  async reply(timeoutMs = 20_000): Promise<{ code: number; text: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.buffer);
      if (match) {
        const text = this.buffer.slice(0, match.index + match[0].length);
        this.buffer = this.buffer.slice(text.length);
        return { code: Number(match[1]), text: text.trim() };
      }
      if (this.closed) throw new Error('the server closed the connection');
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async cmd(line: string): Promise<{ code: number; text: string }> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  async starttls(): Promise<void> {
    this.socket.removeAllListeners('data');
    const secure = connectTls({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.listen(secure);
  }

  close(): void {
    this.socket.end('QUIT\r\n');
    setTimeout(() => this.socket.destroy(), 500).unref();
  }
}

const lastLine = (text: string) => text.split('\r\n').at(-1) ?? text;

export interface SelftestOptions {
  config: Config;
  credentials?: { user: string; password: string };
}

/** Runs the steps in order; stops at the first failure. */
export async function runSelftest({ config, credentials }: SelftestOptions, onStep: (step: SelftestStep) => void = () => {}): Promise<SelftestStep[]> {
  const steps: SelftestStep[] = [];
  const record = (step: SelftestStep) => {
    steps.push(step);
    onStep(step);
    return step.status !== 'fail';
  };
  const host = config.bindAddress && !['0.0.0.0', '::'].includes(config.bindAddress) ? config.bindAddress : '127.0.0.1';
  // On loopback every session comes from a random 127/8 address: the deliberate wrong password must not
  // pile up Dovecot's per-address delay or count towards a ban when the selftest runs every minute.
  const source = (_step: number) => (host.startsWith('127.') ? `127.${1 + randomInt(254)}.${randomInt(256)}.${1 + randomInt(254)}` : undefined);
  const implicit = config.ports.submission === 0;
  const port = implicit ? config.ports.submissions : config.ports.submission;
  if (port === 0) {
    record({ name: 'submission', status: 'fail', detail: 'PORT_SUBMISSION and PORT_SUBMISSIONS are both 0: nothing to test' });
    return steps;
  }

  /** Connect, EHLO and (on 587) STARTTLS; the first session records each step. */
  const submission = async (n: number, verbose: boolean): Promise<Session | undefined> => {
    const session = await Session.open(host, port, implicit, source(n));
    const greeting = await session.reply();
    if (verbose && !record({ name: `connect ${host}:${port}`, status: greeting.code === 220 ? 'ok' : 'fail', detail: lastLine(greeting.text) })) return undefined;
    const ehlo = await session.cmd('EHLO selftest.relaybox.invalid');
    if (verbose && !record({ name: 'EHLO', status: ehlo.code === 250 ? 'ok' : 'fail', detail: implicit ? 'implicit TLS' : /STARTTLS/.test(ehlo.text) ? 'STARTTLS offered' : 'STARTTLS not offered' })) return undefined;
    if (!implicit) {
      const start = await session.cmd('STARTTLS');
      if (start.code !== 220) {
        record({ name: 'STARTTLS', status: 'fail', detail: start.text });
        return undefined;
      }
      await session.starttls();
      const again = await session.cmd('EHLO selftest.relaybox.invalid');
      if (verbose && !record({ name: 'STARTTLS', status: /AUTH\b.*PLAIN/.test(again.text) ? 'ok' : 'fail', detail: /AUTH\b.*PLAIN/.test(again.text) ? 'TLS up, AUTH PLAIN offered' : 'AUTH PLAIN not offered after TLS' })) return undefined;
    }
    return session;
  };

  try {
    const first = await submission(0, true);
    if (!first) return steps;
    const who = credentials?.user ?? `selftest@${config.hostname}`;
    const wrong = await first.cmd(`AUTH PLAIN ${Buffer.from(`\0${who}\0${randomBytes(12).toString('hex')}`).toString('base64')}`);
    first.close();
    if (!record({ name: 'AUTH with a wrong password is refused', status: wrong.code === 535 ? 'ok' : 'fail', detail: wrong.text })) return steps;

    const relayPort = config.ports.smtp > 0 ? config.ports.smtp : port;
    const relaySession = relayPort === port ? await submission(1, false) : await Session.open(host, relayPort, false, source(1));
    if (!relaySession) return steps;
    if (relayPort !== port) {
      await relaySession.reply();
      await relaySession.cmd('EHLO selftest.relaybox.invalid');
    }
    await relaySession.cmd(`MAIL FROM:<selftest@${config.hostname}>`);
    const relay = await relaySession.cmd(`RCPT TO:<${OUTSIDE}>`);
    relaySession.close();
    if (!record({ name: `unauthenticated relay on port ${relayPort} is refused`, status: relay.code >= 500 ? 'ok' : 'fail', detail: relay.text })) return steps;

    if (!credentials) {
      record({ name: 'authenticated transaction', status: 'skip', detail: 'set SELFTEST_USER and SELFTEST_PASSWORD (or SELFTEST_PASSWORD_FILE) to test it' });
      return steps;
    }
    const session = await submission(2, false);
    if (!session) return steps;
    const auth = await session.cmd(`AUTH PLAIN ${Buffer.from(`\0${credentials.user}\0${credentials.password}`).toString('base64')}`);
    if (!record({ name: `AUTH as ${credentials.user}`, status: auth.code === 235 ? 'ok' : 'fail', detail: auth.text })) {
      session.close();
      return steps;
    }
    const mail = await session.cmd(`MAIL FROM:<${credentials.user}>`);
    const rcpt = mail.code === 250 ? await session.cmd(`RCPT TO:<${OUTSIDE}>`) : mail;
    await session.cmd('RSET');
    session.close();
    record({ name: 'authenticated transaction reaches RCPT (reset before DATA, nothing sent)', status: rcpt.code === 250 ? 'ok' : 'fail', detail: rcpt.text });
  } catch (error) {
    record({ name: 'selftest', status: 'fail', detail: (error as Error).message });
  }
  return steps;
}

// Readiness probes: Dovecot's auth protocol handshake on the SASL socket, and a greeting read on
// every enabled mail port (TLS handshake first on the implicit-TLS ports).
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export interface ProbeResult {
  ok: boolean;
  error?: string;
  latencyMs: number;
  checkedAt: string;
}

/** Reads from a socket until `done(buffer)` says so, or fails after `timeoutMs`. */
function converse(socket: Socket, timeoutMs: number, done: (received: string) => string | true | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = '';
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) socket.destroy();
      else {
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      }
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      const verdict = done(received);
      if (verdict === true) finish();
      else if (typeof verdict === 'string') finish(new Error(verdict));
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error(received ? `closed after ${JSON.stringify(received.slice(0, 80))}` : 'closed without a greeting')));
  });
}

async function timed(run: () => Promise<void>): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  try {
    await run();
    return { ok: true, latencyMs: Math.round(performance.now() - started), checkedAt };
  } catch (error) {
    return { ok: false, error: (error as Error).message, latencyMs: Math.round(performance.now() - started), checkedAt };
  }
}

/** Dovecot auth protocol: the server must answer VERSION, list PLAIN among its MECHs, and say DONE. */
export function probeSasl(socketPath: string, timeoutMs = 2000): Promise<ProbeResult> {
  return timed(() => {
    const socket = connectTcp({ path: socketPath });
    socket.write(`VERSION\t1\t2\nCPID\t${process.pid}\n`);
    return converse(socket, timeoutMs, (received) => {
      if (!received.includes('DONE\n')) return undefined;
      if (!/^VERSION\t1\t/m.test(received)) return 'no VERSION 1 from the auth server';
      return /^MECH\tPLAIN(\t|$)/m.test(received) ? true : 'the auth server does not offer PLAIN';
    });
  });
}

export type Greeting = 'smtp' | 'imap';

const GREETINGS: Record<Greeting, { ok: RegExp; bye: string }> = {
  smtp: { ok: /^220[ -]/, bye: 'QUIT\r\n' },
  imap: { ok: /^\* OK/, bye: 'a LOGOUT\r\n' },
};

/**
 * Probes to a loopback port come from this address, so the daemons' log lines about them are
 * recognisable and go to debug level instead of filling the log every two seconds.
 */
export const PROBE_SOURCE = '127.0.0.254';

export function isProbeLine(message: string): boolean {
  return message.includes(`[${PROBE_SOURCE}]`) || message.includes(`rip=${PROBE_SOURCE},`);
}

/** Connects (with TLS when `tls`), reads the protocol greeting, says goodbye. */
export function probeGreeting(host: string, port: number, protocol: Greeting, tls: boolean, timeoutMs = 3000): Promise<ProbeResult> {
  const { ok, bye } = GREETINGS[protocol];
  const localAddress = host.startsWith('127.') ? PROBE_SOURCE : undefined;
  return timed(() => {
    const raw = connectTcp({ host, port, localAddress });
    const socket = tls ? connectTls({ socket: raw, rejectUnauthorized: false }) : raw;
    return converse(socket, timeoutMs, (received) => {
      if (!received.includes('\n')) return undefined;
      if (!ok.test(received)) return `unexpected greeting ${JSON.stringify(received.split('\r\n')[0]?.slice(0, 80))}`;
      socket.write(bye);
      return true;
    });
  });
}

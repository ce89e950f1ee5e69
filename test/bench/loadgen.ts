// The load generator: authenticated submissions over STARTTLS (node:net + node:tls through
// test/helpers/smtp.ts), N concurrent clients, one or several messages per connection.
//
// Run as its own process (so its CPU use does not disturb the /health poller in run.ts):
//   node test/bench/loadgen.ts '{"port":587,"concurrency":8,"perConnection":20,...}'
// prints one JSON LoadResult line on stdout.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { SmtpClient } from '../helpers/smtp.ts';
import { percentile } from './stats.ts';

export interface LoadOptions {
  port: number;
  concurrency: number;
  /** Messages per authenticated session (1 = a new connection per message). */
  perConnection: number;
  /** Measured window after the warm-up. */
  durationMs: number;
  /** Not counted: lets the server spawn its processes first. */
  warmupMs: number;
  /** Hard cap on measured messages. */
  maxMessages: number;
  user: string;
  password: string;
  from: string;
  to: string;
  /** Size of each message in bytes (headers included). */
  size: number;
}

export interface LoadResult {
  messages: number;
  errors: number;
  firstErrors: string[];
  elapsedMs: number;
  perSecond: number;
  /** Per message: connect..250-after-DATA when perConnection=1, MAIL..250-after-DATA otherwise. */
  p50: number;
  p99: number;
  /** Connect..235 after AUTH, per session (measured window only). */
  setupP50: number;
  sessions: number;
  /** Every accepted message, warm-up and overrun included (for CPU per message). */
  total: number;
  /** Single commands (measured window) whose reply took 900 ms or more, by command. */
  stalls: Record<string, number>;
}

const STALL_MS = 900;

/** MAIL, RCPT, DATA, message: the final reply, and each command's reply time. */
async function transaction(client: SmtpClient, from: string, to: string, body: string, timings: Array<[string, number]>): Promise<{ code: number; text: string }> {
  const step = async (verb: string, line: string | undefined, payload?: string) => {
    const t0 = performance.now();
    const reply = line !== undefined ? await client.cmd(line) : (client.write(payload!), await client.read());
    timings.push([verb, performance.now() - t0]);
    return reply;
  };
  let reply = await step('MAIL', `MAIL FROM:<${from}>`);
  if (reply.code !== 250) return reply;
  reply = await step('RCPT', `RCPT TO:<${to}>`);
  if (reply.code !== 250) return reply;
  reply = await step('DATA', 'DATA');
  if (reply.code !== 354) return reply;
  // makeMessage() has CRLF lines and no line starting with a dot.
  return step('end of data', undefined, `${body}.\r\n`);
}

/** A message of exactly `size` bytes (CRLF lines of at most 78 characters). */
export function makeMessage(from: string, to: string, size: number, tag: string): string {
  const head = `From: <${from}>\r\nTo: <${to}>\r\nSubject: relaybox bench ${tag}\r\nMessage-ID: <${tag}@bench.example>\r\nDate: ${new Date().toUTCString()}\r\n\r\n`;
  const line = `${'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(2).slice(0, 74)}\r\n`;
  let body = '';
  while (head.length + body.length + line.length <= size) body += line;
  body += 'x'.repeat(Math.max(0, size - head.length - body.length - 2)) + '\r\n';
  return head + body;
}

async function openSession(port: number, user: string, password: string): Promise<SmtpClient> {
  const { client, greeting } = await SmtpClient.connect(port, { timeoutMs: 10_000 });
  try {
    if (greeting.code !== 220) throw new Error(`greeting ${greeting.code} ${greeting.text}`);
    const ehlo = await client.ehlo('bench.example');
    if (ehlo.code !== 250) throw new Error(`EHLO ${ehlo.code}`);
    await client.starttls();
    const auth = await client.authPlain(user, password);
    if (auth.code !== 235) throw new Error(`AUTH ${auth.code} ${auth.text}`);
    return client;
  } catch (error) {
    client.destroy();
    throw error;
  }
}

/** One fresh connection: STARTTLS + AUTH PLAIN; true when the server says 235. */
export async function authOnce(port: number, user: string, password: string, timeoutMs = 3000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const attempt = (async () => {
    const client = await openSession(port, user, password);
    await client.quit();
    return true;
  })().catch(() => false);
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads from a socket until `done` matches the accumulated text. */
function readUntil(socket: Socket, done: RegExp, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(new Error(`no ${done} within ${timeoutMs} ms: ${JSON.stringify(text)}`)), timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', finish);
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (done.test(text)) finish();
    };
    socket.on('data', onData);
    socket.once('error', finish);
  });
}

/**
 * Latency of the first command after the TLS handshake (EHLO -> 250) over fresh STARTTLS sessions:
 * shows a TLS 1.3 session ticket that the server's Nagle holds back the reply behind until the
 * client's delayed ACK.
 */
export async function ehloAfterTls(port: number, sessions = 10): Promise<number[]> {
  const out: number[] = [];
  const last = /^250 .*\r\n/m;
  for (let i = 0; i < sessions; i++) {
    const socket = connectTcp({ host: '127.0.0.1', port });
    let secure: TLSSocket | undefined;
    try {
      await readUntil(socket, /^220 .*\r\n/m);
      socket.write('EHLO bench.example\r\n');
      await readUntil(socket, last);
      socket.write('STARTTLS\r\n');
      await readUntil(socket, /^220 .*\r\n/m);
      secure = connectTls({ socket, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        secure!.once('secureConnect', () => resolve());
        secure!.once('error', reject);
      });
      const t0 = performance.now();
      secure.write('EHLO bench.example\r\n');
      await readUntil(secure, last);
      out.push(performance.now() - t0);
    } finally {
      secure?.destroy();
      socket.destroy();
    }
  }
  return out;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const start = performance.now();
  const windowStart = start + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const hardStop = windowEnd + 30_000; // in-flight sessions must finish by then
  const latencies: number[] = [];
  const setups: number[] = [];
  const firstErrors: string[] = [];
  let messages = 0;
  let errors = 0;
  let sessions = 0;
  let lastDone = windowStart;
  let seq = 0;
  let total = 0;
  const stalls: Record<string, number> = {};
  const inWindow = (t: number) => t >= windowStart && t <= windowEnd;
  const fail = (error: unknown, t: number) => {
    if (t < windowStart) return; // warm-up errors are not counted
    errors += 1;
    if (firstErrors.length < 5) firstErrors.push((error as Error).message ?? String(error));
  };

  const worker = async (id: number) => {
    while (performance.now() < windowEnd && messages < o.maxMessages && performance.now() < hardStop) {
      const t0 = performance.now();
      let client: SmtpClient | undefined;
      try {
        client = await openSession(o.port, o.user, o.password);
        const tAuth = performance.now();
        if (inWindow(t0)) {
          setups.push(tAuth - t0);
          sessions += 1;
        }
        for (let i = 0; i < o.perConnection; i++) {
          const m0 = i === 0 && o.perConnection === 1 ? t0 : performance.now();
          if (i > 0 && (m0 > windowEnd || messages >= o.maxMessages)) break;
          const body = makeMessage(o.from, o.to, o.size, `w${id}-${seq++}-${Date.now()}`);
          const timings: Array<[string, number]> = [];
          const final = await transaction(client, o.from, o.to, body, timings);
          const m1 = performance.now();
          if (inWindow(m0)) for (const [verb, ms] of timings) if (ms >= STALL_MS) stalls[verb] = (stalls[verb] ?? 0) + 1;
          if (final.code !== 250) throw new Error(`message refused: ${final.code} ${final.text}`);
          total += 1;
          if (inWindow(m0)) {
            latencies.push(m1 - m0);
            messages += 1;
            lastDone = Math.max(lastDone, m1);
          }
        }
        await client.quit();
      } catch (error) {
        client?.destroy();
        fail(error, t0);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };

  await Promise.all(Array.from({ length: o.concurrency }, (_, i) => worker(i)));
  // Throughput over the window (or up to the last completion when the last sessions ran over it).
  const elapsedMs = Math.max(o.durationMs, lastDone - windowStart);
  return {
    messages,
    errors,
    firstErrors,
    elapsedMs: Math.round(elapsedMs),
    perSecond: messages / (elapsedMs / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    setupP50: percentile(setups, 50),
    sessions,
    total,
    stalls,
  };
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
  const result = await runLoad(options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

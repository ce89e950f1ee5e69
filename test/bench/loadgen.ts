// The load generator: authenticated submissions over STARTTLS (node:net + node:tls through
// test/helpers/smtp.ts), N concurrent clients, one or several messages per connection.
//
// Run as its own process (so its CPU use does not disturb the /health poller in run.ts):
//   node test/bench/loadgen.ts '{"port":587,"concurrency":8,"perConnection":20,...}'
// prints one JSON LoadResult line on stdout.
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
          const { final } = await client.send(o.from, [o.to], body);
          const m1 = performance.now();
          if (final.code !== 250) throw new Error(`message refused: ${final.code} ${final.text}`);
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
  };
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
  const result = await runLoad(options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

// Chaos driver: mail in flight from several senders (authenticated submissions on 587/465 and
// inbound mail on 25, to the upstream and to local mailboxes) while Postfix's master, Dovecot's
// master and their children are killed with -9 at random. It records every message that got 250
// after DATA, and counts afterwards how often each arrived (upstream sink or Maildir).
//
// Used by test/integration/chaos.test.ts (20+ kills); `npm run bench` can run it longer (100+ kills)
// and report its figures: runChaos() returns the kills, attempts, acceptances and errors, and
// arrivals() the delivered counts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ports } from './instance.ts';
import type { Sink } from './sink.ts';
import { allMaildirMessages } from './files.ts';
import { SmtpClient, type Reply } from './smtp.ts';

export type SenderKind = 'submission' | 'submissions' | 'inbound';

export interface Sender {
  kind: SenderKind;
  /** The authenticated user and envelope sender (submission), or the outside sender (inbound). */
  from: string;
  password?: string;
  to: string;
}

export interface ChaosOptions {
  stateDir: string;
  ports: Ports;
  senders: Sender[];
  /** How many kill -9 to deliver. */
  kills: number;
  /** Pause before each kill, drawn uniformly from [min, max] ms. */
  pauseMs: [number, number];
  /** Seed of the pseudo-random choices (targets, pauses), for a reproducible run. */
  seed: number;
  log?: (message: string) => void;
}

export interface Kill {
  at: number;
  target: 'postfix master' | 'dovecot master' | 'postfix child' | 'dovecot child';
  pid: number;
  name: string;
}

export interface Sent {
  id: string;
  sender: number;
  to: string;
  /** Where it should arrive: the upstream sink, or the Maildir of a local user. */
  local: boolean;
}

export interface ChaosResult {
  seed: number;
  kills: Kill[];
  /** Messages that got 250 after DATA. */
  accepted: Sent[];
  /** DATA was sent completely but no final reply came (connection lost): may or may not arrive. */
  uncertain: Sent[];
  /** Transactions attempted, and the errors met (refusals, lost connections, timeouts), by kind. */
  attempts: number;
  errors: Record<string, number>;
  durationMs: number;
}

/** mulberry32: a small seeded PRNG, so a failing run can be repeated with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Live processes whose process group is `group`: [pid, comm]. */
function groupMembers(group: number): Array<[number, string]> {
  const members: Array<[number, string]> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' '); // state ppid pgrp ...
      if (fields[0] !== 'Z' && Number(fields[2]) === group) members.push([Number(name), stat.slice(stat.indexOf('(') + 1, close)]);
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

/** The processes that may be killed now, by target. The Postfix master leads its own process group; Dovecot runs in the group the supervisor gave it. */
export function targets(stateDir: string): Record<Kill['target'], Array<[number, string]>> {
  const postfix = readPid(join(stateDir, 'queue/pid/master.pid'));
  const dovecot = readPid(join(stateDir, 'run/master.pid'));
  const alive = (pid: number | undefined): pid is number => pid !== undefined && groupMembers(pid).some(([p]) => p === pid);
  const postfixUp = alive(postfix);
  const dovecotUp = alive(dovecot);
  return {
    'postfix master': postfixUp ? [[postfix, 'master']] : [],
    'dovecot master': dovecotUp ? [[dovecot, 'dovecot']] : [],
    'postfix child': postfixUp ? groupMembers(postfix).filter(([pid]) => pid !== postfix) : [],
    'dovecot child': dovecotUp ? groupMembers(dovecot).filter(([pid]) => pid !== dovecot) : [],
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One sender: sessions until `stop()`, each sending messages until something goes wrong. */
async function senderLoop(index: number, sender: Sender, ports: Ports, stopped: () => boolean, result: ChaosResult): Promise<void> {
  const local = /@relaybox\.test$/.test(sender.to);
  const localAddress = `127.0.0.${60 + index}`;
  let n = 0;
  const fail = (what: string) => {
    result.errors[what] = (result.errors[what] ?? 0) + 1;
  };
  const expect = (reply: Reply, code: number, what: string): boolean => {
    if (reply.code === code) return true;
    fail(`${what} ${reply.code}`);
    return false;
  };
  while (!stopped()) {
    let client: SmtpClient | undefined;
    try {
      const port = sender.kind === 'inbound' ? ports.smtp : ports[sender.kind];
      const opened = await SmtpClient.connect(port, { tls: sender.kind === 'submissions', localAddress, timeoutMs: 10_000 });
      client = opened.client;
      if (!expect(opened.greeting, 220, 'greeting')) throw new Error('greeting');
      if (!expect(await client.cmd('EHLO chaos.example', 10_000), 250, 'EHLO')) throw new Error('EHLO');
      if (sender.kind === 'submission') await client.starttls();
      if (sender.kind !== 'inbound') {
        const auth = await client.cmd(`AUTH PLAIN ${Buffer.from(`\0${sender.from}\0${sender.password}`).toString('base64')}`, 10_000);
        if (!expect(auth, 235, 'AUTH')) throw new Error('AUTH');
      }
      while (!stopped()) {
        const sent: Sent = { id: `chaos-${index}-${++n}-${result.seed}`, sender: index, to: sender.to, local };
        result.attempts += 1;
        if (!expect(await client.cmd(`MAIL FROM:<${sender.from}>`, 10_000), 250, 'MAIL')) throw new Error('MAIL');
        if (!expect(await client.cmd(`RCPT TO:<${sender.to}>`, 10_000), 250, 'RCPT')) throw new Error('RCPT');
        if (!expect(await client.cmd('DATA', 10_000), 354, 'DATA')) throw new Error('DATA');
        client.write(`From: <${sender.from}>\r\nTo: <${sender.to}>\r\nSubject: ${sent.id}\r\nMessage-ID: <${sent.id}@chaos.example>\r\n\r\nchaos message ${sent.id}\r\n.\r\n`);
        let final: Reply;
        try {
          final = await client.read(30_000);
        } catch (error) {
          result.uncertain.push(sent);
          throw error;
        }
        if (final.code === 250) result.accepted.push(sent);
        else {
          fail(`end of DATA ${final.code}`);
          throw new Error('end of DATA');
        }
      }
      await client.quit();
    } catch (error) {
      if (!/^(greeting|EHLO|AUTH|MAIL|RCPT|DATA|end of DATA)$/.test((error as Error).message)) fail((error as NodeJS.ErrnoException).code ?? 'connection lost');
      client?.destroy();
      await sleep(100);
    }
  }
}

/** Runs senders and the killer together until `kills` kills were delivered; then lets the senders finish. */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const random = prng(options.seed);
  const result: ChaosResult = { seed: options.seed, kills: [], accepted: [], uncertain: [], attempts: 0, errors: {}, durationMs: 0 };
  const started = Date.now();
  let stop = false;
  const senders = options.senders.map((sender, index) => senderLoop(index, sender, options.ports, () => stop, result));
  try {
    while (result.kills.length < options.kills) {
      const [min, max] = options.pauseMs;
      await sleep(min + random() * (max - min));
      const available = Object.entries(targets(options.stateDir)).filter(([, pids]) => pids.length > 0) as Array<[Kill['target'], Array<[number, string]>]>;
      if (available.length === 0) continue; // both masters down: nothing to kill right now
      const [target, pids] = available[Math.floor(random() * available.length)]!;
      const [pid, name] = pids[Math.floor(random() * pids.length)]!;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        continue; // exited by itself meanwhile
      }
      result.kills.push({ at: Date.now() - started, target, pid, name });
      options.log?.(`kill -9 ${pid} (${target}: ${name})`);
    }
  } finally {
    stop = true;
    // Each step has its own timeout; a sender that still has not finished after this is stuck. The
    // timer is cleared once they are done: left running it kept the test process alive for 120 s.
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 120_000)));
    const done = await Promise.race([Promise.all(senders).then(() => true), stuck]);
    clearTimeout(timer);
    if (!done) throw new Error('a sender was still busy 120 s after the last kill');
  }
  result.durationMs = Date.now() - started;
  return result;
}

/** How many times each chaos message arrived, upstream and in the mailboxes. */
export function arrivals(sink: Sink, stateDir: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of [...sink.messages(), ...allMaildirMessages(stateDir)]) {
    const id = /^Subject: (chaos-\d+-\d+-\d+)\r?$/m.exec(text)?.[1];
    if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

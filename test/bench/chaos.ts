// Chaos: mail in flight (authenticated submissions on 587 relayed to an upstream sink, inbound mail
// on 25 to a local mailbox, several senders) while Postfix's master, Dovecot's master, OpenDKIM and
// their children are killed with -9 at random. Every message a sender got 250 for must arrive
// (upstream sink or Maildir); counted by Message-ID: lost, duplicates, recovery per kind, /ready 503.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { DOMAIN, PASSWORD, Sink, type Instance } from '../helpers/instance.ts';
import { SmtpClient } from '../helpers/smtp.ts';
import { statePaths } from '../../src/render/paths.ts';
import { queuedIn } from './baseline.ts';
import { P, QUICK, httpGet, log, onCleanup, readyBody, startInstance } from './common.ts';
import { comm, groupMembers, readPid } from './proc.ts';
import { fmt, median, sleep } from './stats.ts';

export const KINDS = ['postfix master', 'postfix child', 'dovecot master', 'dovecot child', 'opendkim'] as const;
export type Kind = (typeof KINDS)[number];
const DAEMON: Record<Kind, string> = { 'postfix master': 'postfix', 'postfix child': 'postfix', 'dovecot master': 'dovecot', 'dovecot child': 'dovecot', opendkim: 'opendkim' };
/**
 * A daemon that dies within 10 s of its start is in a crash loop (backoff); masters are killed only
 * after that. The smoke run kills each kind in turn at once instead.
 */
const MIN_UPTIME_MS = QUICK ? 0 : 10_500;
/** Each sender pauses this long after a message: mail keeps flowing without flooding the disk. */
const PACE_MS = 40;

export interface ChaosResults {
  kills: Array<{ kind: Kind; victim: string; recoveredMs: number }>;
  accepted: number;
  acceptedByPort: Record<'587' | '25', number>;
  arrived: number;
  lost: string[];
  duplicates: number;
  arrivedWithout250: number;
  stillQueued: number;
  flushedByHand: boolean;
  /** Deferral reasons (postqueue -p) of what was still queued 60 s after the last kill, and at the end. */
  deferred: string[];
  /** Queue files 60 s after the last kill (before any flush by hand). */
  queuedAfter60: number;
  queueAtEnd: string[];
  notReadyMs: number;
  durationMs: number;
  failures: Record<string, number>;
  restarts: Record<string, number>;
  healthy: boolean;
}

interface Sender {
  port: 'submission' | 'smtp';
  user?: string;
  to: string;
  from: string;
}

function messageIds(text: string): string[] {
  return [...text.matchAll(/^Message-ID:\s*<([^>]+)>/gim)].map((m) => m[1]!);
}

export async function chaosRun(): Promise<ChaosResults> {
  const sink = await Sink.start();
  const inst: Instance = await startInstance({ RESTART_BUDGET: '1000', SPAM_FILTER: 'off' }, { sink });
  onCleanup(() => inst.destroy());
  const paths = statePaths(inst.stateDir);
  const accepted = new Set<string>();
  const acceptedByPort = { '587': 0, '25': 0 };
  const attempted = new Set<string>();
  const failures: Record<string, number> = {};
  let running = true;

  const senders: Sender[] = [
    { port: 'submission', user: `alice@${DOMAIN}`, from: `alice@${DOMAIN}`, to: 'chaos@sink.example' },
    { port: 'submission', user: `alice@${DOMAIN}`, from: `alice@${DOMAIN}`, to: 'chaos@sink.example' },
    { port: 'submission', user: `bob@${DOMAIN}`, from: `bob@${DOMAIN}`, to: 'chaos@sink.example' },
    { port: 'smtp', from: 'someone@outside.example', to: `alice@${DOMAIN}` },
    { port: 'smtp', from: 'other@outside.example', to: `alice@${DOMAIN}` },
  ];
  const fail = (what: string) => (failures[what] = (failures[what] ?? 0) + 1);
  const senderLoop = async (s: Sender, n: number) => {
    let seq = 0;
    let id = `chaos-${n}-${seq}-${Date.now()}@bench.example`;
    while (running) {
      let client: SmtpClient | undefined;
      try {
        ({ client } = await SmtpClient.connect(inst.ports[s.port], { timeoutMs: 10_000 }));
        await client.ehlo('chaos.example');
        if (s.user) {
          await client.starttls();
          const auth = await client.authPlain(s.user, PASSWORD);
          if (auth.code !== 235) throw new Error(`AUTH ${auth.code}`);
        }
        for (let i = 0; i < 5 && running; i++) {
          attempted.add(id);
          const body = `From: <${s.from}>\r\nTo: <${s.to}>\r\nSubject: chaos ${id}\r\nMessage-ID: <${id}>\r\n\r\nchaos run\r\n`;
          const { final } = await client.send(s.from, [s.to], body);
          if (final.code !== 250) throw new Error(`${final.code}`);
          accepted.add(id);
          acceptedByPort[s.port === 'smtp' ? '25' : '587'] += 1;
          seq += 1;
          id = `chaos-${n}-${seq}-${Date.now()}@bench.example`;
          await sleep(PACE_MS);
        }
        await client.quit();
      } catch (error) {
        client?.destroy();
        const m = (error as Error).message;
        fail(/^\d{3}$/.test(m) ? `reply ${m}` : /^AUTH/.test(m) ? m : /timed out|within/.test(m) ? 'timeout' : 'connection lost or refused');
        await sleep(200);
      }
    }
  };

  // /ready sampled every 25 ms for the whole run: the time it was not 200.
  let notReadyMs = 0;
  const readyLoop = (async () => {
    let last = performance.now();
    while (running) {
      const r = await httpGet(inst.url('/ready'), 1000);
      const now = performance.now();
      if (r.status !== 200) notReadyMs += now - last;
      last = now;
      await sleep(25);
    }
  })();

  const t0 = performance.now();
  const loops = senders.map((s, n) => senderLoop(s, n));
  const lastStart: Record<string, number> = { postfix: performance.now(), dovecot: performance.now(), opendkim: performance.now() };
  const kills: ChaosResults['kills'] = [];
  await sleep(2000);
  while (kills.length < P.chaosKills) {
    const now = performance.now();
    const candidates = KINDS.filter((k) => !k.endsWith('master') && k !== 'opendkim' ? true : now - lastStart[DAEMON[k]]! >= MIN_UPTIME_MS);
    const kind = QUICK ? KINDS[kills.length % KINDS.length]! : candidates[Math.floor(Math.random() * candidates.length)]!;
    const before = (await readyBody(inst)).body.daemons?.[DAEMON[kind]]?.restarts ?? 0;
    const postfixMaster = readPid(paths.masterPid);
    const dovecotMaster = readPid(`${paths.dovecotBase}/master.pid`);
    let pid: number | undefined;
    if (kind === 'postfix master') pid = postfixMaster;
    else if (kind === 'dovecot master') pid = dovecotMaster;
    else if (kind === 'opendkim') pid = readPid(paths.opendkimPid);
    else {
      const master = kind === 'postfix child' ? postfixMaster : dovecotMaster;
      const children = master === undefined ? [] : groupMembers(master).filter((p) => p !== master);
      pid = children[Math.floor(Math.random() * children.length)];
    }
    if (pid === undefined) {
      await sleep(100);
      continue;
    }
    const victim = comm(pid);
    const k0 = performance.now();
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      continue;
    }
    // Recovered: /ready 200 again and, after a master or OpenDKIM kill, the daemon restarted.
    let recoveredMs = Number.NaN;
    const restartExpected = kind.endsWith('master') || kind === 'opendkim';
    while (performance.now() - k0 < 30_000) {
      const { status, body } = await readyBody(inst);
      if (status === 200 && (!restartExpected || (body.daemons?.[DAEMON[kind]]?.restarts ?? 0) > before)) {
        recoveredMs = performance.now() - k0;
        break;
      }
      await sleep(10);
    }
    if (restartExpected) lastStart[DAEMON[kind]] = performance.now();
    kills.push({ kind, victim, recoveredMs });
    if (kills.length % 10 === 0 || QUICK) log(`chaos: ${kills.length}/${P.chaosKills} kills (last: ${kind} ${victim}, recovered in ${fmt(recoveredMs)} ms); ${accepted.size} messages accepted so far`);
    await sleep(500 + Math.random() * 1000);
  }
  running = false;
  await Promise.all([...loops, readyLoop]);
  const durationMs = performance.now() - t0;

  // Everything accepted must arrive. Mail deferred by a killed delivery agent waits out Postfix's
  // backoff (300 s); after 60 s the rest is flushed by hand (postqueue -f), as an operator would.
  const queued = () => queuedIn(paths.queue);
  let flushedByHand = false;
  const reasons = () => {
    const text = execFileSync('postqueue', ['-c', paths.postfix, '-p'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const counts = new Map<string, number>();
    for (const m of text.matchAll(/^\s*\((.+)\)$/gm)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    const entries = (text.match(/^[0-9A-F]{6,}[*!]?\s/gm) ?? []).length;
    const withReason = [...counts.values()].reduce((a, n) => a + n, 0);
    return [...counts.entries()].map(([r, n]) => `${n}× ${r.slice(0, 120)}`).concat(entries > withReason ? [`${entries - withReason} without a deferral reason (incoming or active queue)`] : []);
  };
  let deferred: string[] = [];
  for (let waited = 0; queued() > 0 && waited < 60_000; waited += 500) await sleep(500);
  const queuedAfter60 = queued();
  if (queued() > 0) {
    flushedByHand = true;
    deferred = reasons();
    log(`chaos: ${queued()} queue files after 60 s; postqueue -f`);
    execFileSync('postqueue', ['-c', paths.postfix, '-f']);
    // Until empty, or no change for 10 s (files a killed cleanup left half-written stay until Postfix removes them).
    let last = queued();
    let same = 0;
    for (let waited = 0; queued() > 0 && waited < 60_000 && same < 10_000; waited += 500) {
      await sleep(500);
      same = queued() === last ? same + 500 : 0;
      last = queued();
    }
  }
  const queueFiles = () => {
    const out = execFileSync('find', ['incoming', 'active', 'deferred', 'maildrop', 'hold', '-type', 'f'], { cwd: paths.queue, encoding: 'utf8' });
    const byDir = new Map<string, number>();
    for (const line of out.split('\n').filter(Boolean)) byDir.set(line.split('/')[0]!, (byDir.get(line.split('/')[0]!) ?? 0) + 1);
    return [...byDir.entries()].map(([dir, n]) => `${n} in ${dir}`);
  };
  await sleep(1000);
  const counts = new Map<string, number>();
  const add = (text: string) => messageIds(text).filter((id) => id.startsWith('chaos-')).forEach((id) => counts.set(id, (counts.get(id) ?? 0) + 1));
  for (const text of sink.messages()) add(text);
  const maildir = `${paths.mail}/${DOMAIN}/alice/Maildir`;
  for (const sub of ['new', 'cur']) {
    if (!existsSync(`${maildir}/${sub}`)) continue;
    for (const name of readdirSync(`${maildir}/${sub}`)) add(readFileSync(`${maildir}/${sub}/${name}`, 'utf8'));
  }
  const { body } = await readyBody(inst);
  const health = await httpGet(inst.url('/health'));
  const restarts = Object.fromEntries(Object.entries(body.daemons ?? {}).map(([name, d]) => [name, d.restarts]));
  rmSync(`${inst.stateDir}/mail`, { recursive: true, force: true });
  return {
    kills,
    accepted: accepted.size,
    acceptedByPort,
    arrived: counts.size,
    lost: [...accepted].filter((id) => !counts.has(id)),
    duplicates: [...counts.values()].reduce((a, n) => a + n - 1, 0),
    arrivedWithout250: [...counts.keys()].filter((id) => !accepted.has(id)).length,
    stillQueued: queued(),
    flushedByHand,
    deferred,
    queuedAfter60,
    queueAtEnd: queued() > 0 ? [...reasons(), ...queueFiles()] : [],
    notReadyMs,
    durationMs,
    failures,
    restarts,
    healthy: health.status === 200,
  };
}

export function recoveryByKind(r: ChaosResults): Array<{ kind: Kind; n: number; median: number; max: number; unrecovered: number }> {
  return KINDS.map((kind) => {
    const t = r.kills.filter((k) => k.kind === kind).map((k) => k.recoveredMs);
    const ok = t.filter(Number.isFinite);
    return { kind, n: t.length, median: median(ok), max: ok.length ? Math.max(...ok) : Number.NaN, unrecovered: t.length - ok.length };
  });
}

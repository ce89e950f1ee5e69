// Dovecot's cost per AUTH with the hash schemes `relaybox hash-password` offers, and whether
// Dovecot's auth cache (auth_cache_size, negative caching off) changes it and the throughput of
// one message per session (each session authenticates). One relaybox instance with one user per
// scheme (hashes made by `doveadm pw`, as hash-password does); the cache is switched by appending
// to the rendered dovecot.conf and reloading Dovecot (SIGHUP), between runs in a shuffled order.
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { DOMAIN, PASSWORD, hashOf, type Instance } from '../helpers/instance.ts';
import { SmtpClient } from '../helpers/smtp.ts';
import { statePaths } from '../../src/render/paths.ts';
import { queuedIn } from './baseline.ts';
import { P, countingSink, drained, loadOptions, log, onCleanup, readyAfter, runLoadgen, shuffle, startInstance } from './common.ts';
import { authOnce, type LoadResult } from './loadgen.ts';
import { groupsCpuSeconds, groupsMemory, readPid } from './proc.ts';
import { fmt, median, sleep } from './stats.ts';

export const SCHEMES = ['SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID'] as const;
export type Scheme = (typeof SCHEMES)[number];
export type Cache = 'off' | 'on';
export const CACHE_LINES = ['auth_cache_size = 10M', 'auth_cache_ttl = 1 hour', 'auth_cache_negative_ttl = 0'];

export interface AuthCell {
  /** AUTH PLAIN → 235, ms, one session after another. */
  authMs: number[];
  /** Dovecot CPU ms per AUTH over the serial sessions. */
  cpuPerAuth: number;
  /** 8 clients × 1 message per session. */
  load: LoadResult[];
  /** Dovecot's RSS (all its processes), max over the load runs, MiB. */
  rssMax: number;
}

export interface AuthResults {
  cells: Map<string, AuthCell>;
  hashes: Record<Scheme, string>;
  errors: string[];
}

const address = (scheme: Scheme) => `${scheme.toLowerCase().replace(/[^a-z0-9]/g, '')}@${DOMAIN}`;

function hashWith(scheme: Scheme): string {
  if (scheme === 'SHA512-CRYPT') return hashOf(PASSWORD);
  return execFileSync('doveadm', ['-O', 'pw', '-s', scheme], { input: `${PASSWORD}\n${PASSWORD}\n`, encoding: 'utf8' }).trim();
}

async function setCache(inst: Instance, cache: Cache, base: string): Promise<void> {
  const paths = statePaths(inst.stateDir);
  writeFileSync(paths.dovecotConf, base);
  if (cache === 'on') appendFileSync(paths.dovecotConf, `\n# bench: auth cache\n${CACHE_LINES.join('\n')}\n`);
  const size = execFileSync('doveconf', ['-c', paths.dovecotConf, '-h', 'auth_cache_size'], { encoding: 'utf8' }).trim();
  if ((cache === 'on') !== (size !== '0')) throw new Error(`auth_cache_size is ${size} with the cache ${cache}`);
  const master = readPid(`${paths.dovecotBase}/master.pid`);
  if (master !== undefined) process.kill(master, 'SIGHUP');
  await sleep(500);
  await readyAfter(inst, performance.now(), 30_000, 50);
  for (const scheme of SCHEMES) if (!(await authOnce(inst.ports.submission, address(scheme), PASSWORD, 10_000))) throw new Error(`AUTH as ${scheme} user fails after the reload`);
}

async function authSerial(port: number, user: string, n: number, dovecotGroup: () => number[]): Promise<{ ms: number[]; cpuPerAuth: number }> {
  const ms: number[] = [];
  const cpu0 = groupsCpuSeconds(dovecotGroup());
  for (let i = 0; i < n; i++) {
    const { client } = await SmtpClient.connect(port);
    try {
      await client.ehlo('bench.example');
      await client.starttls();
      const t0 = performance.now();
      const reply = await client.authPlain(user, PASSWORD);
      if (reply.code !== 235) throw new Error(`AUTH ${reply.code} ${reply.text}`);
      ms.push(performance.now() - t0);
    } finally {
      await client.quit();
    }
  }
  return { ms, cpuPerAuth: ((groupsCpuSeconds(dovecotGroup()) - cpu0) * 1000) / n };
}

export async function authTrials(): Promise<AuthResults> {
  const out: AuthResults = { cells: new Map(), hashes: {} as Record<Scheme, string>, errors: [] };
  for (const s of SCHEMES) out.hashes[s] = hashWith(s);
  const sink = await countingSink();
  const users = SCHEMES.map((s) => `${address(s)}:${out.hashes[s]}`).join('\n');
  const inst = await startInstance({ MAIL_USERS: users, RELAY_HOST: `[127.0.0.1]:${sink.port}`, SPAM_FILTER: 'off' });
  onCleanup(() => inst.destroy());
  const paths = statePaths(inst.stateDir);
  const base = readFileSync(paths.dovecotConf, 'utf8');
  const dovecotGroup = () => [readPid(`${paths.dovecotBase}/master.pid`)].filter((g): g is number => g !== undefined);
  for (let rep = 1; rep <= P.authReps; rep++) {
    for (const cache of shuffle(['off', 'on'] as Cache[])) {
      await setCache(inst, cache, base);
      for (const scheme of shuffle([...SCHEMES])) {
        const k = `${scheme}:${cache}`;
        const cell = out.cells.get(k) ?? { authMs: [], cpuPerAuth: Number.NaN, load: [], rssMax: 0 };
        out.cells.set(k, cell);
        try {
          if (rep === 1) {
            const serial = await authSerial(inst.ports.submission, address(scheme), P.authSerial, dovecotGroup);
            cell.authMs = serial.ms;
            cell.cpuPerAuth = serial.cpuPerAuth;
          }
          await drained('relaybox', () => queuedIn(paths.queue));
          await sleep(P.pause);
          let rssMax = 0;
          const timer = setInterval(() => (rssMax = Math.max(rssMax, groupsMemory(dovecotGroup()).rss)), 250);
          const result = await runLoadgen(loadOptions(inst.ports.submission, 8, 1, { user: address(scheme), from: address(scheme), durationMs: P.authMs }));
          clearInterval(timer);
          cell.load.push(result);
          cell.rssMax = Math.max(cell.rssMax, rssMax);
          log(`auth ${scheme} cache ${cache} rep ${rep}: AUTH median ${fmt(median(cell.authMs), 1)} ms, ${fmt(cell.cpuPerAuth, 1)} ms CPU/AUTH; 8×1 ${fmt(result.perSecond, 1)} msg/s (errors ${result.errors}), Dovecot RSS max ${fmt(rssMax, 0)} MiB`);
        } catch (error) {
          out.errors.push(`${k}: ${(error as Error).message}`);
          log(`auth ${k}: ${(error as Error).message}`);
        }
      }
    }
  }
  return out;
}

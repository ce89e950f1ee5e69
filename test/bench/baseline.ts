// Baseline (b): the hand-written Postfix + Dovecot SASL configuration in test/bench/baseline/,
// started by hand from the Debian packages (no relaybox), in its own temp dir and ports.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { groupMembers, readPid } from './proc.ts';
import { sleep } from './stats.ts';

const HERE = new URL('./baseline/', import.meta.url);
const CHROOT_FILES = ['/etc/localtime', '/etc/services', '/etc/resolv.conf', '/etc/hosts', '/etc/host.conf', '/etc/nsswitch.conf'];

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('data', (d) => done(d.toString().startsWith('220')));
    socket.once('error', () => done(false));
  });
}

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`baseline: timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface BaselineOptions {
  port: number;
  sinkPort: number;
  hostname: string;
  certFile: string;
  keyFile: string;
  /** passwd-file lines: address:{SCHEME}hash */
  users: Array<{ address: string; hash: string }>;
  /** Extra main.cf lines (e.g. a variant of the baseline). */
  extraMainCf?: string[];
}

export class Baseline {
  readonly dir: string;
  readonly port: number;
  private dovecot: ChildProcess | undefined;
  private postfix: ChildProcess | undefined;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
  }

  get configDir(): string {
    return `${this.dir}/postfix`;
  }

  static async start(o: BaselineOptions): Promise<Baseline> {
    const dir = mkdtempSync('/tmp/rbbase-');
    chmodSync(dir, 0o755); // the postfix user must traverse it (data_directory, queue)
    const b = new Baseline(dir, o.port);
    const fill = (name: string) =>
      readFileSync(new URL(name, HERE), 'utf8')
        .replaceAll('@DIR@', dir)
        .replaceAll('@HOSTNAME@', o.hostname)
        .replaceAll('@RELAYHOST@', `[127.0.0.1]:${o.sinkPort}`)
        .replaceAll('@CERT@', o.certFile)
        .replaceAll('@KEY@', o.keyFile)
        .replaceAll('@SUBMISSION@', `127.0.0.1:${o.port}`)
        .replaceAll('@INSTANCE@', `rbbench-${dir.split('-').pop()}`);
    mkdirSync(b.configDir, { recursive: true });
    mkdirSync(`${dir}/data`, { recursive: true });
    mkdirSync(`${dir}/queue`, { recursive: true });
    chownSync(`${dir}/data`, Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' })), 0);
    writeFileSync(`${b.configDir}/main.cf`, fill('main.cf') + (o.extraMainCf ?? []).map((line) => `${line}\n`).join(''));
    writeFileSync(`${b.configDir}/master.cf`, fill('master.cf'));
    writeFileSync(`${dir}/dovecot.conf`, fill('dovecot.conf'));
    writeFileSync(`${dir}/passwd`, o.users.map((u) => `${u.address}:${u.hash}::::::\n`).join(''), { mode: 0o640 });
    execFileSync('chgrp', ['dovecot', `${dir}/passwd`]);
    // Creates the queue tree (as Debian's postinst/init script would).
    execFileSync('postfix', ['-c', b.configDir, 'check'], { stdio: 'ignore' });
    for (const file of CHROOT_FILES) {
      if (!existsSync(file)) continue;
      mkdirSync(dirname(`${dir}/queue${file}`), { recursive: true });
      copyFileSync(file, `${dir}/queue${file}`);
    }
    b.dovecot = spawn('dovecot', ['-F', '-c', `${dir}/dovecot.conf`], { detached: true, stdio: 'ignore' });
    await until("the baseline's Dovecot auth socket", 15_000, () => existsSync(`${dir}/queue/private/auth`));
    b.postfix = spawn('postfix', ['-c', b.configDir, 'start-fg'], { detached: true, stdio: 'ignore' });
    await until(`the baseline's submission port ${o.port}`, 15_000, () => greets(o.port));
    return b;
  }

  /** Files in the queue (incoming, active, deferred, maildrop, hold): 0 once everything is relayed. */
  queued(): number {
    return queuedIn(`${this.dir}/queue`);
  }

  async stop(): Promise<void> {
    try {
      execFileSync('postfix', ['-c', this.configDir, 'stop'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already down
    }
    const master = readPid(`${this.dir}/queue/pid/master.pid`);
    for (const child of [this.postfix, this.dovecot]) {
      if (child?.pid === undefined) continue;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    await sleep(300);
    const groups = [this.postfix?.pid, this.dovecot?.pid, master].filter((g): g is number => g !== undefined);
    for (const group of groups) {
      if (groupMembers(group).length === 0) continue;
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Queue files of a Postfix queue directory (relaybox or baseline). */
export function queuedIn(queueDir: string): number {
  try {
    const out = execFileSync('find', ['incoming', 'active', 'deferred', 'maildrop', 'hold', '-type', 'f'], { cwd: queueDir, encoding: 'utf8' });
    return out.split('\n').filter(Boolean).length;
  } catch {
    return -1;
  }
}

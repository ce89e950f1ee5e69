// Baseline (b): the hand-written Postfix + Dovecot SASL configuration in test/bench/baseline/,
// started by hand from the Debian packages (no relaybox), in its own temp dir and ports.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { probeMilter } from '../../src/protocol/milter.ts';
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
  /**
   * Sign with OpenDKIM: relaybox's own rendered opendkim.conf, KeyTable and SigningTable (from this
   * relaybox STATE_DIR, same keys), with only the socket, pid and table paths moved here; attached
   * the tutorial way (smtpd_milters and non_smtpd_milters in main.cf).
   */
  dkimFrom?: string;
}

export class Baseline {
  readonly dir: string;
  readonly port: number;
  private dovecot: ChildProcess | undefined;
  private postfix: ChildProcess | undefined;
  private opendkim: ChildProcess | undefined;

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
    const milter = o.dkimFrom ? ['smtpd_milters = unix:/opendkim/opendkim.sock', 'non_smtpd_milters = $smtpd_milters', 'milter_default_action = tempfail', 'milter_protocol = 6'] : [];
    // Extra lines replace the template's line for the same parameter (no "overriding earlier entry").
    const extra = [...milter, ...(o.extraMainCf ?? [])];
    const overridden = new Set(extra.map((line) => line.split('=')[0]!.trim()));
    const template = fill('main.cf').split('\n').filter((line) => !overridden.has(line.split('=')[0]!.trim()));
    writeFileSync(`${b.configDir}/main.cf`, `${template.join('\n')}${extra.map((line) => `${line}\n`).join('')}`);
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
    if (o.dkimFrom) await b.startOpendkim(o.dkimFrom);
    b.dovecot = spawn('dovecot', ['-F', '-c', `${dir}/dovecot.conf`], { detached: true, stdio: 'ignore' });
    await until("the baseline's Dovecot auth socket", 15_000, () => existsSync(`${dir}/queue/private/auth`));
    b.postfix = spawn('postfix', ['-c', b.configDir, 'start-fg'], { detached: true, stdio: 'ignore' });
    await until(`the baseline's submission port ${o.port}`, 15_000, () => greets(o.port));
    return b;
  }

  /** OpenDKIM with relaybox's rendered configuration, its paths moved into this baseline's directory. */
  private async startOpendkim(stateDir: string): Promise<void> {
    const ids = (name: string) => Number(execFileSync('id', [name === 'opendkim' ? '-u' : '-g', name], { encoding: 'utf8' }));
    mkdirSync(`${this.dir}/opendkim`, { recursive: true });
    mkdirSync(`${this.dir}/queue/opendkim`, { recursive: true, mode: 0o750 });
    chownSync(`${this.dir}/queue/opendkim`, ids('opendkim'), ids('postfix'));
    chownSync(`${this.dir}/opendkim`, ids('opendkim'), ids('postfix'));
    for (const name of ['opendkim.conf', 'KeyTable', 'SigningTable']) {
      const text = readFileSync(`${stateDir}/opendkim/${name}`, 'utf8').replaceAll(`${stateDir}/queue/opendkim/`, `${this.dir}/queue/opendkim/`).replaceAll(`${stateDir}/opendkim/`, `${this.dir}/opendkim/`);
      writeFileSync(`${this.dir}/opendkim/${name}`, text);
    }
    this.opendkim = spawn('opendkim', ['-f', '-x', `${this.dir}/opendkim/opendkim.conf`], { detached: true, stdio: 'ignore' });
    await until("the baseline's OpenDKIM socket", 15_000, async () => (await probeMilter(`${this.dir}/queue/opendkim/opendkim.sock`, 1000)).ok);
  }

  /** Process groups of the baseline's daemons (for CPU and memory). */
  groups(): number[] {
    return [readPid(`${this.dir}/queue/pid/master.pid`), readPid(`${this.dir}/run/master.pid`), this.opendkim?.pid].filter((p): p is number => p !== undefined);
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
    for (const child of [this.postfix, this.dovecot, this.opendkim]) {
      if (child?.pid === undefined) continue;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    await sleep(300);
    const groups = [this.postfix?.pid, this.dovecot?.pid, this.opendkim?.pid, master].filter((g): g is number => g !== undefined);
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

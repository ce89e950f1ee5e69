// Postfix's smtp-sink as the fake upstream of every test (host mode and container): a real SMTP
// server on 127.0.0.1 that writes each transaction it accepts to a file. One class for both.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { filesBelow } from './files.ts';
import { freePort, waitFor } from './wait.ts';

const BINARY = ['/usr/sbin/smtp-sink', '/usr/lib/postfix/sbin/smtp-sink'].find((path) => existsSync(path)) ?? 'smtp-sink';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** One received transaction: smtp-sink's envelope headers (X-Mail-Args, X-Rcpt-Args...), then the message. */
export interface Received {
  /** The envelope recipients (X-Rcpt-Args), without angle brackets. */
  recipients: string[];
  /** The whole file. */
  text: string;
}

export function parseReceived(text: string): Received {
  const recipients = [...text.matchAll(/^X-Rcpt-Args: <([^>]*)>/gm)].map((match) => match[1]!);
  return { recipients, text };
}

export class Sink {
  readonly dir: string;
  readonly port: number;
  private child: ChildProcess | undefined;
  private stderr = '';

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** A sink on a free (or the given) port, not started yet: an upstream that is down. */
  static async create(port?: number, dir?: string): Promise<Sink> {
    return new Sink(port ?? (await freePort()), dir ?? mkdtempSync('/tmp/rbsink-'));
  }

  /** A running sink. */
  static async start(port?: number, dir?: string): Promise<Sink> {
    const sink = await Sink.create(port, dir);
    await sink.resume();
    return sink;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts (again) on the same port and directory; resolves once it accepts connections. */
  async resume(): Promise<void> {
    if (this.running) return;
    mkdirSync(this.dir, { recursive: true });
    // As root, smtp-sink drops to the postfix user after binding, so the directory must be postfix's.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(this.dir, Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' })), 0);
    // A directory per hour ("%Y%m%d%H/%M." + a random suffix), so a long run never fills one directory.
    const args = [...(asRoot ? ['-u', 'postfix'] : []), '-d', `${this.dir}/%Y%m%d%H/%M.`, `127.0.0.1:${this.port}`, '100'];
    const child = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    child.stderr!.on('data', (chunk) => (this.stderr += chunk));
    this.child = child;
    await waitFor(`smtp-sink on ${this.port}`, 10_000, async () => {
      if (child.exitCode !== null) throw new Error(`smtp-sink exited ${child.exitCode}: ${this.stderr}`);
      return (await accepts(this.port)) || undefined;
    }, 50);
  }

  /** Stops it (the upstream goes down); waits until the process is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** The received transactions in arrival order (envelope headers smtp-sink adds, then the message). */
  messages(): string[] {
    return filesBelow(this.dir)
      .map((path) => ({ path, at: statSync(path).mtimeMs }))
      .sort((a, b) => a.at - b.at || a.path.localeCompare(b.path))
      .map(({ path }) => readFileSync(path, 'latin1'));
  }

  /** The received transactions, parsed. */
  received(): Received[] {
    return this.messages().map(parseReceived);
  }

  /** How many received transactions contain `marker`. */
  count(marker: string): number {
    return this.messages().filter((message) => message.includes(marker)).length;
  }

  /** Waits until every marker has arrived at least once; false after `timeoutMs`. */
  async waitFor(markers: string[], timeoutMs: number): Promise<boolean> {
    return waitFor(`${markers.join(', ')} at the sink`, timeoutMs, () => markers.every((marker) => this.count(marker) > 0) || undefined, 250).then(
      () => true,
      () => false,
    );
  }

  /** Stops it now and deletes what it received. */
  remove(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

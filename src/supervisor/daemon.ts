// One supervised daemon: launched in its own process group, its log lines re-emitted, its whole
// group ended on restart and shutdown (a master killed with -9 leaves its children running).
import { setTimeout as wait } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { emitDaemonLine, type DaemonLogLine } from './daemon-log.ts';
import { groupMembers } from './proc.ts';

export interface DaemonSpec {
  name: 'postfix' | 'dovecot';
  command: string;
  args: string[];
  parseLine: (line: string) => DaemonLogLine;
  /** Runs before every launch: clear what a killed instance left behind. */
  prepare: () => Promise<void> | void;
  /** Resolves once the daemon is up far enough for what depends on it. */
  waitStarted: (signal: AbortSignal) => Promise<void>;
  /** Asks the daemon to stop cleanly (e.g. `postfix stop`, which keeps the queue). */
  stopGracefully: (pid: number) => Promise<void>;
  /** Process groups beyond the launched one (Postfix's master starts its own session). */
  extraGroups: () => number[];
  /** Log lines that belong at debug level (the supervisor's own probe connections). */
  demote?: (line: DaemonLogLine) => boolean;
  /**
   * A FIFO to use as the daemon's stdout/stderr. Postfix's postlogd opens /dev/stdout by name, which
   * fails (ENXIO) on the socketpair Node gives a child; a FIFO is a real pipe and survives restarts.
   */
  logFifo?: string;
}

export interface DaemonStatus {
  state: 'stopped' | 'starting' | 'running' | 'restarting' | 'failed';
  pid?: number;
  restarts: number;
  startedAt?: string;
  lastExit?: { code?: number; signal?: string; at: string };
  lastError?: string;
}

export type ExitListener = (info: { code?: number; signal?: string }) => void;

/** In its own process group (detached), so the whole daemon can be ended with one kill. */
// execa takes either a file descriptor or 'pipe' here; its types do not accept the union, hence the cast.
function launch(command: string, args: string[], output: number | 'pipe'): ChildProcess {
  // The 'exit' event lives on the underlying ChildProcess, execa's documented escape hatch.
  return execa(command, args, { detached: true, stdin: 'ignore', stdout: output as 'pipe', stderr: output as 'pipe', buffer: false, reject: false, cleanup: false, env: { LANG: 'C' } }).nodeChildProcess;
}

export class Daemon {
  readonly spec: DaemonSpec;
  readonly status: DaemonStatus = { state: 'stopped', restarts: 0 };
  private child: ReturnType<typeof launch> | undefined;
  private readonly log: Logger;
  private readonly groups = new Set<number>();
  private onExit: ExitListener = () => {};
  private onLine: (line: DaemonLogLine) => void = () => {};
  private fifo: { reader: Socket; writer: number } | undefined;

  constructor(spec: DaemonSpec, log: Logger) {
    this.spec = spec;
    this.log = log.child({ service: spec.name });
  }

  /** Called with every parsed log line (the supervisor counts failed authentications). */
  onLogLine(listener: (line: DaemonLogLine) => void): void {
    this.onLine = listener;
  }

  /** Called when the daemon exits without being asked to. */
  onUnexpectedExit(listener: ExitListener): void {
    this.onExit = listener;
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.spec.prepare();
    this.status.state = 'starting';
    const output: number | 'pipe' = this.spec.logFifo ? await this.openFifo(this.spec.logFifo) : 'pipe';
    const child = launch(this.spec.command, this.spec.args, output);
    this.child = child;
    if (child.pid === undefined) throw new Error(`could not launch ${this.spec.command}`);
    const pid = child.pid;
    this.groups.add(pid);
    this.status.pid = pid;
    if (output === 'pipe') for (const stream of [child.stdout, child.stderr] as Readable[]) this.relay(stream);
    let starting = true;
    const exitedEarly = new Promise<never>((_, reject) => {
      // 'exit', not the result promise: that also waits for stdio, which orphaned children keep open.
      child.once('exit', (code, signalName) => {
        const info = { code: code ?? undefined, signal: signalName ?? undefined };
        this.status.lastExit = { ...info, at: new Date().toISOString() };
        if (this.child !== child) return; // an exit we caused
        this.child = undefined;
        this.status.pid = undefined;
        if (starting) reject(new Error(`${this.spec.name} exited during start (${info.signal ?? `code ${info.code}`})`));
        else this.onExit(info);
      });
    });
    exitedEarly.catch(() => undefined);
    try {
      await Promise.race([this.spec.waitStarted(signal), exitedEarly]);
    } finally {
      starting = false;
    }
    for (const group of this.spec.extraGroups()) this.groups.add(group);
    this.status.state = 'running';
    this.status.startedAt = new Date().toISOString();
  }

  private async openFifo(path: string): Promise<number> {
    if (!this.fifo) {
      rmSync(path, { force: true });
      await execa('mkfifo', ['-m', '0600', path]);
      const reader = new Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
      this.relay(reader);
      this.fifo = { reader, writer: openSync(path, constants.O_WRONLY) };
    }
    return this.fifo.writer;
  }

  private closeFifo(): void {
    if (!this.fifo) return;
    closeSync(this.fifo.writer);
    this.fifo.reader.destroy();
    this.fifo = undefined;
  }

  private relay(stream: Readable): void {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const parse = (text: string) => {
        const parsed = this.spec.parseLine(text);
        return this.spec.demote?.(parsed) ? { ...parsed, level: 'debug' as const } : parsed;
      };
      const parsed = emitDaemonLine(this.log, parse, line);
      if (parsed) this.onLine(parsed);
    });
  }

  /** Graceful stop, then SIGKILL of every process left in the daemon's groups. */
  async stop(graceMs: number): Promise<void> {
    const child = this.child;
    this.child = undefined;
    this.status.state = 'stopped';
    if (child?.pid !== undefined) {
      await Promise.race([this.spec.stopGracefully(child.pid).catch(() => undefined), wait(graceMs)]);
      if (child.exitCode === null && child.signalCode === null) await Promise.race([new Promise((resolve) => child.once('exit', resolve)), wait(Math.max(0, graceMs / 2))]);
    }
    await this.killGroups();
    await wait(50); // let the last log lines drain
    this.closeFifo();
  }

  /** Ends every process of the daemon now (the restart path), and waits until they are gone. */
  async killGroups(): Promise<void> {
    this.child = undefined;
    for (const group of this.spec.extraGroups()) this.groups.add(group);
    for (let attempt = 0; attempt < 40; attempt++) {
      const alive = groupMembers(this.groups);
      if (alive.length === 0) break;
      for (const group of this.groups) {
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // group already empty
        }
      }
      await wait(25);
    }
    this.groups.clear();
    this.status.pid = undefined;
  }
}

// One supervised daemon: launched in its own process group, its log lines re-emitted, its whole
// group ended on restart and shutdown (a master killed with -9 leaves its children running).
// The Daemon owns its status; the supervisor asks it to change state, never writes it.
import { setTimeout as wait } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { closeSync, constants, lstatSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { startCommand } from '../host/command.ts';
import { groupMembers } from '../host/processes.ts';
import type { DaemonDeclaration } from './declaration.ts';
import { emitDaemonLine, type DaemonLogLine } from './log-line.ts';

export interface DaemonStatus {
  state: 'stopped' | 'starting' | 'running' | 'restarting' | 'failed';
  pid?: number;
  restarts: number;
  startedAt?: string;
  lastExit?: { code?: number; signal?: string; at: string };
  lastError?: string;
}

type ExitListener = (info: { code?: number; signal?: string }) => void;

/**
 * In its own process group (detached), so the whole daemon can be ended with one kill; its output on a
 * FIFO or pipes that the Daemon reads line by line. A long-running child with its own stdio needs none
 * of what execa adds for commands (host/command.ts), and spawning it directly keeps execa off the start.
 */
function launch(file: string, args: string[], output: number | 'pipe'): ChildProcess {
  return spawn(file, args, { detached: true, stdio: ['ignore', output, output], env: { ...process.env, LANG: 'C' } });
}

export class Daemon {
  readonly declaration: DaemonDeclaration;
  private readonly current: DaemonStatus = { state: 'stopped', restarts: 0 };
  private startedAtMs: number | undefined;
  private child: ChildProcess | undefined;
  private readonly log: Logger;
  private readonly groups = new Set<number>();
  private onExit: ExitListener = () => {};
  private onLine: (line: DaemonLogLine) => void = () => {};
  private readonly demote: (line: DaemonLogLine) => boolean;
  private fifo: { reader: Socket; writer: number } | undefined;
  /** Output streams not yet at their end (the last lines are read before a stop returns). */
  private readonly open = new Set<Readable>();

  /** `demote`: lines that belong at debug level (e.g. the supervisor's own probe connections). */
  constructor(declaration: DaemonDeclaration, log: Logger, demote: (line: DaemonLogLine) => boolean = () => false) {
    this.declaration = declaration;
    this.log = log.child({ service: declaration.name });
    this.demote = demote;
  }

  get name(): string {
    return this.declaration.name;
  }

  status(): DaemonStatus {
    return { ...this.current };
  }

  get state(): DaemonStatus['state'] {
    return this.current.state;
  }

  get pid(): number | undefined {
    return this.current.pid;
  }

  /** How long the current processes have been running (0 when none is). */
  uptimeMs(now = Date.now()): number {
    return this.startedAtMs === undefined ? 0 : now - this.startedAtMs;
  }

  /** Called with every parsed log line. */
  onLogLine(listener: (line: DaemonLogLine) => void): void {
    this.onLine = listener;
  }

  /** Called when the daemon exits without being asked to. */
  onUnexpectedExit(listener: ExitListener): void {
    this.onExit = listener;
  }

  /** The supervisor is about to replace the processes (`reason` is shown in /health). */
  beginRestart(reason: string): void {
    this.current.state = 'restarting';
    this.current.lastError = reason;
  }

  /** The restart budget is spent: the daemon stays down. */
  giveUp(reason: string): void {
    this.current.state = 'failed';
    this.current.lastError = reason;
  }

  async start(signal: AbortSignal): Promise<void> {
    const restarting = this.current.state === 'restarting';
    await this.declaration.prepare();
    if (restarting) this.current.restarts += 1;
    this.current.state = 'starting';
    const output: number | 'pipe' = this.declaration.logFifo ? await this.openFifo(this.declaration.logFifo) : 'pipe';
    const child = launch(this.declaration.command, this.declaration.args, output);
    this.child = child;
    if (child.pid === undefined) throw this.startFailed(new Error(`could not launch ${this.declaration.command}`));
    const pid = child.pid;
    this.groups.add(pid);
    this.current.pid = pid;
    this.startedAtMs = Date.now();
    if (output === 'pipe') for (const stream of [child.stdout, child.stderr] as Readable[]) this.relay(stream);
    let starting = true;
    const exitedEarly = new Promise<never>((_, reject) => {
      // 'exit', not the result promise: that also waits for stdio, which orphaned children keep open.
      child.once('exit', (code, signalName) => {
        const info = { code: code ?? undefined, signal: signalName ?? undefined };
        this.current.lastExit = { ...info, at: new Date().toISOString() };
        if (this.child !== child) return; // an exit we caused
        this.child = undefined;
        this.current.pid = undefined;
        if (starting) reject(new Error(`${this.name} exited during start (${info.signal ?? `code ${info.code}`})`));
        else this.onExit(info);
      });
    });
    exitedEarly.catch(() => undefined);
    try {
      await Promise.race([this.declaration.waitStarted(signal), exitedEarly]);
    } catch (error) {
      throw this.startFailed(error as Error);
    } finally {
      starting = false;
    }
    for (const group of this.declaration.extraGroups()) this.groups.add(group);
    this.current.state = 'running';
    this.current.startedAt = new Date().toISOString();
    this.log.debug({ event: 'daemon_started', ms: Date.now() - this.startedAtMs }, `${this.name} is up`);
  }

  private startFailed(error: Error): Error {
    this.current.state = 'restarting';
    this.current.lastError = error.message;
    this.startedAtMs = undefined;
    return error;
  }

  private async openFifo(path: string): Promise<number> {
    if (!this.fifo) {
      // One left by an earlier run is reused (a FIFO keeps no data once nobody has it open).
      const found = lstatSync(path, { throwIfNoEntry: false });
      if (!(found?.isFIFO() && found.uid === process.getuid?.() && (found.mode & 0o777) === 0o600)) {
        rmSync(path, { force: true });
        await startCommand('mkfifo', ['-m', '0600', path]);
      }
      const reader = new Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
      this.relay(reader);
      this.fifo = { reader, writer: openSync(path, constants.O_WRONLY) };
    }
    return this.fifo.writer;
  }

  /** Every output stream at its end (the daemon's processes are gone), or `capMs` passed. */
  private async drain(capMs: number): Promise<void> {
    if (this.fifo) closeSync(this.fifo.writer); // the last writer: the reader now sees the end
    const ends = [...this.open].map((stream) => new Promise((resolve) => stream.once('close', resolve)));
    await Promise.race([Promise.all(ends), wait(capMs)]);
    this.fifo?.reader.destroy();
    this.fifo = undefined;
  }

  private relay(stream: Readable): void {
    this.open.add(stream);
    stream.once('close', () => this.open.delete(stream));
    const parse = (text: string) => {
      const parsed = this.declaration.parseLine(text);
      return this.demote(parsed) ? { ...parsed, level: 'debug' as const } : parsed;
    };
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      const parsed = emitDaemonLine(this.log, parse, line);
      if (parsed) this.onLine(parsed);
    });
  }

  /** Re-read the rendered files in place, when the daemon is running and knows how. */
  async reload(): Promise<void> {
    if (this.current.state === 'running') await this.declaration.reload?.(this.current.pid);
  }

  /** Graceful stop, then SIGKILL of every process left in the daemon's groups. */
  async stop(): Promise<void> {
    const child = this.child;
    const { graceMs, gracefully } = this.declaration.stop;
    this.child = undefined;
    this.current.state = 'stopped';
    if (child?.pid !== undefined) {
      await Promise.race([gracefully(child.pid).catch(() => undefined), wait(graceMs)]);
      if (child.exitCode === null && child.signalCode === null) await Promise.race([new Promise((resolve) => child.once('exit', resolve)), wait(Math.max(0, graceMs / 2))]);
    }
    await this.killGroups();
    await this.drain(200);
  }

  /** Ends every process of the daemon now (the restart path), and waits until they are gone. */
  async killGroups(): Promise<void> {
    this.child = undefined;
    for (const group of this.declaration.extraGroups()) this.groups.add(group);
    for (let attempt = 0; attempt < 40; attempt++) {
      if (groupMembers(this.groups).length === 0) break;
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
    this.current.pid = undefined;
    this.startedAtMs = undefined;
  }
}

/** Polls `check` every 20 ms until it holds, the signal aborts, or `timeoutMs` passes. */
export async function pollUntil(what: string, signal: AbortSignal, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (signal.aborted) throw new Error(`stopped while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await wait(20);
  }
}

// What a daemon is, as data: how it is launched, what it needs first, how readiness is probed, how it
// reloads and stops. One file per daemon declares it; the supervisor runs any list of them.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { OrphanSignature } from '../host/orphans.ts';
import type { ProbeResult } from '../protocol/probes.ts';
import type { StatePaths } from '../render/paths.ts';
import type { DaemonLogLine } from './log-line.ts';

export interface Probe {
  name: string;
  run: () => Promise<ProbeResult>;
}

export interface DaemonDeclaration {
  name: string;
  /** Daemons that must be up before this one starts, and without which it cannot serve. */
  needs: string[];
  /**
   * false: start at the same time as what it needs, which it only reaches once a client arrives (the
   * probes, and so /ready, wait for both anyway). Default: start once what it needs is up.
   */
  waitsForNeeds?: boolean;
  /**
   * relaybox serves while this one starts or is down (e.g. port 25 answers 451 without the filter):
   * nothing waits for it, and /ready reports its state without turning 503 for it.
   */
  optional?: boolean;
  command: string;
  args: string[];
  /** Turns one line of the daemon's output into a log event (level, program, message). */
  parseLine: (line: string) => DaemonLogLine;
  /**
   * A FIFO to use as the daemon's stdout/stderr. Postfix's postlogd opens /dev/stdout by name, which
   * fails (ENXIO) on the socketpair Node gives a child; a FIFO is a real pipe and survives restarts.
   */
  logFifo?: string;
  /** Runs before every launch: clear what a killed instance left behind. */
  prepare: () => Promise<void> | void;
  /** Resolves once the daemon is up far enough for what depends on it. */
  waitStarted: (signal: AbortSignal) => Promise<void>;
  /** Its own readiness probes; the greeting on each of its listeners is probed as well. */
  probes: Probe[];
  /** Re-read the rendered files in place (same processes). */
  reload?: (pid: number | undefined) => Promise<void>;
  stop: {
    /** Asks the daemon to stop cleanly (e.g. `postfix stop`, which keeps the queue). */
    gracefully: (pid: number) => Promise<void>;
    /** How long a clean stop may take before the rest of its processes are killed. */
    graceMs: number;
  };
  /** Process groups beyond the launched one (Postfix's master starts its own session). */
  extraGroups: () => number[];
  /** How to recognise this daemon left running by a supervisor that was killed with -9. */
  orphan?: OrphanSignature;
  /** Once, after the first start (e.g. retry mail queued before this start); a failure is logged. */
  afterStart?: (log: Logger) => Promise<void>;
  /** A daemon this one needs was restarted (e.g. retry the deliveries deferred while it was down). */
  onDependencyRestarted?: (log: Logger) => Promise<void>;
}

export interface DaemonContext {
  config: Config;
  paths: StatePaths;
}

/** A daemon's declaration for this configuration, or undefined when the configuration does not run it. */
export type DeclareDaemon = (context: DaemonContext) => DaemonDeclaration | undefined;

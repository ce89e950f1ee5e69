// A daemon's output line as a log event: re-emitted as JSON with the daemon's `service` and a level
// taken from the daemon's own prefix. Each daemon's parser lives beside its declaration.
import type { Logger } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface DaemonLogLine {
  level: Level;
  program?: string;
  pid?: number;
  msg: string;
}

export function emitDaemonLine(log: Logger, parse: (line: string) => DaemonLogLine, line: string): DaemonLogLine | undefined {
  if (line.trim() === '') return undefined;
  const { level, msg, ...fields } = parse(line);
  log[level](fields, msg);
  return { level, msg, ...fields };
}

// One JSON line per event on stdout (pino); `pretty` for humans at a terminal.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config/schema.ts';

export type { Logger };

/** The root logger; every line gets a `service` (supervisor, http, postfix, dovecot) from a child. */
export function createLogger(options: Config['log'] = { level: 'info', format: 'json' }): Logger {
  const base = { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  return options.format === 'pretty' ? pino(base, pretty({ sync: true, ignore: 'pid,hostname' })) : pino(base, pino.destination({ fd: 1, sync: true }));
}

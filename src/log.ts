// One JSON line per event on stdout (pino); `pretty` for humans at a terminal.
import { pino, type Logger } from 'pino';
import type { Config } from './config/schema.ts';

export type { Logger };

/** The root logger; every line gets a `service` (supervisor, http, postfix, dovecot) from a child. */
export async function createLogger(options: Config['log'] = { level: 'info', format: 'json' }, fd = 1): Promise<Logger> {
  const base = { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  // Asynchronous writes: a burst of daemon lines (thousands a second under load) must not block /health.
  if (options.format !== 'pretty') return pino(base, pino.destination({ fd, sync: false }));
  const { default: pretty } = await import('pino-pretty');
  return pino(base, pretty({ sync: true, ignore: 'pid,hostname' }));
}

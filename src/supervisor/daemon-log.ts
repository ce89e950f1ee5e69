// Re-emits Postfix and Dovecot log lines as JSON with a `service` field and a proper level.
import type { Logger } from 'pino';

type Level = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface DaemonLogLine {
  level: Level;
  program?: string;
  pid?: number;
  msg: string;
}

// "Nov 26 02:00:00 mail.example.com postfix/smtpd[123]: warning: ..."
const POSTFIX = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ([\w/.-]+)\[(\d+)\]: (.*)$/;
const POSTFIX_LEVEL: Record<string, Level> = { warning: 'warn', error: 'error', fatal: 'fatal', panic: 'fatal' };

export function parsePostfixLine(line: string): DaemonLogLine {
  const match = POSTFIX.exec(line);
  const program = match?.[1];
  const msg = match?.[3] ?? line;
  const prefix = /^(warning|error|fatal|panic): /.exec(msg)?.[1];
  const level = prefix ? POSTFIX_LEVEL[prefix]! : 'info';
  return { level, msg, ...(program ? { program, pid: Number(match?.[2]) } : {}) };
}

// "auth: Info: ..." or "imap-login: Info: Login: user=<...>" (log_timestamp is empty)
const DOVECOT = /^(.*?): (Debug|Info|Warning|Error|Fatal|Panic): (.*)$/;
const DOVECOT_LEVEL: Record<string, Level> = { Debug: 'debug', Info: 'info', Warning: 'warn', Error: 'error', Fatal: 'fatal', Panic: 'fatal' };

export function parseDovecotLine(line: string): DaemonLogLine {
  const match = DOVECOT.exec(line);
  if (!match) return { level: /^(Error|Fatal)/.test(line) ? 'error' : 'info', msg: line };
  return { level: DOVECOT_LEVEL[match[2]!]!, program: match[1]!, msg: match[3]! };
}

export function emitDaemonLine(log: Logger, parse: (line: string) => DaemonLogLine, line: string): DaemonLogLine | undefined {
  if (line.trim() === '') return undefined;
  const { level, msg, ...fields } = parse(line);
  log[level](fields, msg);
  return { level, msg, ...fields };
}

// The daemons relaybox runs, in no particular order: the supervisor derives the start order from
// each declaration's `needs`. Adding a daemon is one file beside this one and one entry here.
import type { DaemonContext, DaemonDeclaration, DeclareDaemon } from './declaration.ts';
import { dovecot } from './dovecot.ts';
import { opendkim } from './opendkim.ts';
import { postfix } from './postfix.ts';
import { rspamd } from './rspamd.ts';
import { unbound } from './unbound.ts';

const DAEMONS: DeclareDaemon[] = [dovecot, opendkim, rspamd, unbound, postfix];

export function declareDaemons(context: DaemonContext): DaemonDeclaration[] {
  return DAEMONS.flatMap((declare) => declare(context) ?? []);
}

// Every change an operator makes is one `admin_action` log event (who, what, which ids) and one count
// in relaybox_admin_actions_total{action}. Reads are not audited (they change nothing).
import type { Logger } from 'pino';

export interface Actor {
  /** Who: `cli` (the control socket, root in the container), `token` (ADMIN_TOKEN) or the admin's address. */
  who: string;
  /** From where: `control-socket`, or the client address of the admin API. */
  via: string;
}

export class Audit {
  private readonly log: Logger;
  private readonly counted: (action: string) => void;

  constructor(log: Logger, counted: (action: string) => void) {
    this.log = log.child({ service: 'operations' });
    this.counted = counted;
  }

  record(actor: Actor, action: string, details: Record<string, unknown>, summary: string): void {
    this.counted(action);
    this.log.info({ event: 'admin_action', action, actor: actor.who, via: actor.via, ...details }, `${actor.who} (${actor.via}): ${summary}`);
  }
}

// One set of operations behind every surface (the CLI's control socket, the admin API, the console):
// status, queue, accounts, bans and DKIM. It depends on the supervisor's view and the defences,
// never the other way round; every change goes through Audit.
import type { Logger } from 'pino';
import type { AbuseDefences } from '../abuse/defences.ts';
import type { Config } from '../config/schema.ts';
import type { UserEntry } from '../config/values.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import type { StatePaths } from '../render/paths.ts';
import type { Readiness } from '../supervision/checks.ts';
import type { Health } from '../supervision/supervisor.ts';
import { AccountOperations } from './accounts.ts';
import { AppPasswordOperations } from './app-passwords.ts';
import { Audit } from './audit.ts';
import { BanOperations } from './bans.ts';
import { DkimOperations } from './dkim.ts';
import { dnsRecords } from './dns.ts';
import { QueueOperations } from './queue.ts';
import { queueSummary } from './queue-read.ts';

export interface OperationsContext {
  config: () => Config;
  users: () => UserEntry[];
  paths: StatePaths;
  log: Logger;
  defences: AbuseDefences;
  readiness: () => Readiness;
  health: () => Health;
  /** Counts one operator action (relaybox_admin_actions_total). */
  counted: (action: string) => void;
  /** Renders the daemons' files again and has OpenDKIM re-read its tables (a DKIM rotation step). */
  resign: () => Promise<void>;
  /** Which replica this is (HOSTNAME, the pod name under Kubernetes). */
  replica: string;
}

export class Operations {
  readonly queue: QueueOperations;
  readonly accounts: AccountOperations;
  readonly bans: BanOperations;
  readonly appPasswords: AppPasswordOperations;
  readonly dkim: DkimOperations;
  private readonly context: OperationsContext;

  constructor(context: OperationsContext) {
    this.context = context;
    const audit = new Audit(context.log, context.counted);
    this.queue = new QueueOperations(context.paths, audit);
    this.accounts = new AccountOperations({ users: context.users, aliases: () => context.config().aliases }, context.defences, this.queue, audit);
    this.appPasswords = new AppPasswordOperations({ config: context.config, users: context.users, paths: context.paths, log: context.log.child({ service: 'operations' }) }, audit);
    this.bans = new BanOperations(context.defences, context.config, audit);
    this.dkim = new DkimOperations(context.config, context.paths, context.resign, audit);
  }

  /** The replica whose queue and daemons these are (bans and suspensions are shared with REDIS_URL). */
  get replica(): string {
    return this.context.replica;
  }

  observe(line: DaemonLogLine): void {
    this.accounts.observe(line);
    this.appPasswords.observe(line);
  }

  /** Every record to publish, with what DNS answers for it. */
  dns() {
    return dnsRecords(this.context.config(), this.context.paths);
  }

  /** What this replica runs, whether it is ready, and what is queued, banned and suspended. */
  async status() {
    const config = this.context.config();
    const { ready, failing, degraded, checks, daemons } = this.context.readiness();
    const { healthy, error } = this.context.health();
    const suspended = (await this.context.defences.sending?.suspensions().catch(() => undefined)) ?? [];
    const queue = queueSummary(await this.queue.reader.all().catch(() => []));
    return {
      replica: this.context.replica,
      role: config.role,
      hostname: config.hostname,
      healthy,
      ...(error ? { error } : {}),
      ready,
      failing,
      degraded,
      daemons,
      checks,
      queue,
      bans: this.bans.list().length,
      suspendedUsers: suspended.map((s) => s.user),
      sharedState: config.redis ? 'redis' : 'file',
    };
  }
}

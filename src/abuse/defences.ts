// The abuse defences the supervisor runs beside the daemons, built from the config: brute-force bans
// (Postfix's access map and Dovecot's auth policy), per-user sending limits (a Postfix policy
// service), the gateway watch, and the store that keeps bans, counters and suspensions across
// restarts: a file in STATE_DIR, or Redis shared by every replica (REDIS_URL), whose bans made by
// other replicas are learnt every second. The composition root starts them around the daemons and
// feeds them the log lines.
import { command } from '../host/command.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { UserEntry } from '../config/values.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import { userIds } from '../host/accounts.ts';
import type { StatePaths } from '../render/paths.ts';
import { sendingLimitsOn } from '../render/postfix/master-cf.ts';
import { sendAsTable } from '../render/postfix/senders.ts';
import { probeMilter } from '../protocol/milter.ts';
import type { AuthPolicyEndpoint } from '../render/types.ts';
import type { ServiceCheck } from '../supervision/checks.ts';
import { defaultGateways, GatewayWatch, neverBanned } from './addresses.ts';
import { AuthPolicyServer, probeAuthPolicy } from './auth-policy.ts';
import { AuthBans } from './bans.ts';
import { PolicyService, probePolicyService, type PolicyDecider, type PolicyRequest } from './policy-service.ts';
import { sendingPolicy } from './sending-policy.ts';
import { certificateRules, judgeRelay, type CertificateRules } from './client-certs.ts';
import { SendLimits, type LimitName } from './send-limits.ts';
import type { RedisStore } from './redis-store.ts';
import { FileStore, type AbuseStore } from './store.ts';
import { HeaderFromMilter } from './header-from-milter.ts';
import { DoubleBounceWatch } from './double-bounces.ts';
import type { SendAsTable } from './header-from.ts';

/** How often a replica looks for bans the others made (a ban is in force everywhere within ~1-2 s). */
const LEARN_BANS_MS = 1000;

export interface DefenceHooks {
  /** Makes the daemons refuse exactly these addresses (Postfix's access map, then a reload). */
  putBansInForce: (addresses: string[]) => Promise<void>;
  rateLimited: (limit: LimitName) => void;
}

/** Who may send as which address, as the envelope check (smtpd_sender_login_maps) has it. */
const sendersOf = (config: Config, users: UserEntry[]): SendAsTable => new Map(sendAsTable({ config, users }));

/** Puts queued messages on hold; postsuper reports each one it held. */
async function holdQueued(paths: StatePaths, ids: string[]): Promise<number> {
  const result = await command('postsuper', ['-c', paths.postfix, '-h', '-'], { input: `${ids.join('\n')}\n`, reject: false, timeoutMs: 30_000 });
  return (result.all.match(/placed on hold/g) ?? []).length;
}

export class AbuseDefences {
  readonly store: AbuseStore;
  private readonly shared: RedisStore | undefined;
  private learning: NodeJS.Timeout | undefined;
  private suspendedCount = 0;
  readonly bans: AuthBans;
  readonly gateways: GatewayWatch;
  private readonly doubleBounces: DoubleBounceWatch;
  readonly sending: SendLimits | undefined;
  private readonly policy: PolicyService | undefined;
  private readonly authPolicy: AuthPolicyServer | undefined;
  private readonly headerFrom: HeaderFromMilter | undefined;
  private certificates: CertificateRules | undefined;
  /** The message (Postfix's policy `instance`) whose relay by certificate was last logged. */
  private certificateLogged = '';
  private readonly paths: StatePaths;
  private readonly log: Logger;
  authPolicyEndpoint: AuthPolicyEndpoint | undefined;

  /** The Redis client is loaded only when REDIS_URL asks for it (~90 ms of every start otherwise). */
  static async create(config: Config, users: UserEntry[], paths: StatePaths, log: Logger, hooks: DefenceHooks): Promise<AbuseDefences> {
    const shared = config.redis ? new (await import('./redis-store.ts')).RedisStore(config.redis, log) : undefined;
    return new AbuseDefences(config, users, paths, log, hooks, shared);
  }

  private constructor(config: Config, users: UserEntry[], paths: StatePaths, log: Logger, hooks: DefenceHooks, shared: RedisStore | undefined) {
    this.paths = paths;
    this.log = log;
    this.shared = shared;
    this.store = this.shared ?? FileStore.open(paths.abuseState);
    const gateways = defaultGateways();
    this.gateways = new GatewayWatch(gateways, log);
    this.doubleBounces = new DoubleBounceWatch(config.postmaster === undefined, log);
    this.bans = new AuthBans(config.auth.ban, hooks.putBansInForce, log, { store: this.store, exempt: neverBanned(config.banExempt), isGateway: (address) => this.gateways.isGateway(address) });
    if (config.auth.ban.threshold > 0) this.authPolicy = new AuthPolicyServer((address) => this.bans.isBanned(address), log);
    if (sendingLimitsOn(config)) this.sending = new SendLimits(config.sending, users, this.store, { log, hold: (ids) => holdQueued(paths, ids), limited: hooks.rateLimited });
    if (config.clientCerts) this.certificates = certificateRules(config.clientCerts, users, sendersOf(config, users));
    if (this.sending || this.certificates) this.policy = new PolicyService({ socketPath: paths.policySocket, owner: userIds('postfix'), decide: this.policyDecider(), log });
    // The submission ports (every role but mailbox) check the header From: against the login.
    if (config.role !== 'mailbox') this.headerFrom = new HeaderFromMilter({ socketPath: paths.headerFromMilterSocket, owner: userIds('postfix'), table: sendersOf(config, users), log });
  }

  /** RCPT: relay by client certificate (render/postfix/client-certs.ts); DATA: the sending limits. */
  private policyDecider(): PolicyDecider {
    const limits = this.sending ? sendingPolicy((request) => this.sending!.decide(request)) : undefined;
    return async (request) => {
      if (request.protocol_state === 'RCPT') return this.certificates ? this.relayByCertificate(this.certificates, request) : 'DUNNO';
      return limits ? limits(request) : 'DUNNO';
    };
  }

  private relayByCertificate(rules: CertificateRules, request: PolicyRequest): string {
    const verdict = judgeRelay(rules, request);
    const context = { account: verdict.account, client: request.client_address, fingerprint: request.ccert_fingerprint || undefined, sender: request.sender };
    if (verdict.refused) {
      this.log.warn({ event: 'client_certificate_refused', ...context, reason: verdict.refused }, `refused mail by client certificate: ${verdict.refused} (${verdict.account})`);
    } else if (verdict.action === 'OK' && request.instance !== this.certificateLogged) {
      this.certificateLogged = request.instance ?? '';
      this.log.info({ event: 'client_certificate_relay', ...context }, `relaying for ${verdict.account} by client certificate`);
    }
    return verdict.action;
  }

  /** Before the daemons' files are rendered: bans from the last run, and Dovecot's auth policy endpoint. */
  async open(): Promise<void> {
    // A shared store that cannot be reached yet: start without its bans, learn them once it answers.
    if (this.shared && !(await this.shared.ready())) this.log.warn({ event: 'bans_not_restored' }, 'the shared store (Redis) does not answer yet: bans made by other replicas are learnt once it does');
    const restored = await this.bans.restore().catch(() => []);
    if (restored.length > 0) {
      this.log.info({ event: 'bans_restored', bans: restored }, `restored ${restored.length} ban(s) from the last run: ${restored.map((ban) => `${ban.address} (${ban.seconds} s left)`).join(', ')}`);
    }
    this.authPolicyEndpoint = await this.authPolicy?.start();
  }

  /** Once the queue directory exists (its private/ holds the policy and milter sockets), before Postfix starts. */
  async startPolicyService(): Promise<void> {
    await Promise.all([this.policy?.start(), this.headerFrom?.start()]);
  }

  /** They count for /ready; the policy service listens afresh when its check keeps failing. */
  serviceChecks(): ServiceCheck[] {
    const checks: ServiceCheck[] = [];
    if (this.policy) {
      const policy = this.policy;
      checks.push({ name: 'sending-policy', run: () => probePolicyService(this.paths.policySocket), recover: () => policy.restart() });
    }
    const headerFrom = this.headerFrom;
    if (headerFrom) checks.push({ name: 'header-from-milter', run: () => probeMilter(this.paths.headerFromMilterSocket), recover: () => headerFrom.restart() });
    const endpoint = this.authPolicyEndpoint;
    if (endpoint) checks.push({ name: 'auth-policy', run: () => probeAuthPolicy(endpoint) });
    // Degraded, not unready: without the store, submission fails closed (451) but port 25, the
    // handoffs and IMAP go on, and a replica that cannot reach it is no worse than its peers.
    const shared = this.shared;
    if (shared) checks.push({ name: 'redis', optional: true, run: () => shared.probe() });
    return checks;
  }

  /** Starts expiring bans; their time also runs while relaybox is stopped. */
  start(): void {
    this.bans.start();
    if (!this.shared) return;
    let busy = false;
    this.learning = setInterval(() => {
      if (busy) return;
      busy = true;
      // An unreachable store is said once by the store itself (store_unreachable) and in /ready.
      void this.bans.learn().catch(() => undefined).finally(() => (busy = false));
    }, LEARN_BANS_MS);
    this.learning.unref();
  }

  observe(line: DaemonLogLine): void {
    this.bans.observe(line);
    this.gateways.observe(line);
    this.doubleBounces.observe(line);
  }

  /** For /metrics: the last count read when the store cannot be read now (a scrape never fails for it). */
  async suspendedUsers(): Promise<number> {
    try {
      this.suspendedCount = (await this.sending?.suspendedUsers())?.length ?? 0;
    } catch {
      // the shared store is unreachable: /ready says so
    }
    return this.suspendedCount;
  }

  /** A reload: new limits, users whose password changed are no longer suspended, new send-as rights. */
  async reconfigure(config: Config, users: UserEntry[]): Promise<void> {
    this.headerFrom?.configure(sendersOf(config, users));
    if (config.clientCerts && this.certificates) this.certificates = certificateRules(config.clientCerts, users, sendersOf(config, users));
    this.doubleBounces.discarding = config.postmaster === undefined;
    await this.sending?.configure(config.sending, users);
  }

  async stop(): Promise<void> {
    this.bans.stop();
    clearInterval(this.learning);
    await this.policy?.stop();
    await this.headerFrom?.stop();
    await this.authPolicy?.stop();
    await this.store.flush();
    await this.shared?.close();
  }
}

// Prometheus metrics, fed by the daemon log lines the supervisor already reads (no polling of mailq).
// Labels never carry user names or addresses: only ports, results, reason classes and daemon names.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Registry } from 'prom-client';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import { countFiles } from '../host/files.ts';
import { LISTENERS } from '../listeners.ts';
import type { Readiness } from '../supervision/checks.ts';
import { MilterMetrics } from './milters.ts';
import { SmarthostDeliveries, type ConfiguredSmarthost } from './smarthosts.ts';
import type { Logger } from 'pino';

export interface MetricSources {
  /** The supervisor's one readiness verdict: daemons and checks. */
  readiness: () => Readiness;
  bansActive: () => number;
  /** Users suspended by the sending limits' circuit breaker. */
  suspendedUsers?: () => Promise<number>;
  queueDir: string;
  certFile: () => string;
  /** Age of the oldest queued message (seconds). */
  oldestQueuedSeconds?: () => Promise<number>;
  /** Messages a relay replica left in its queue at its last stop (no peer took them), until delivered. */
  strandedMessages?: () => number;
  /** The configured smarthosts (metrics/smarthosts.ts), to say which one delivered. */
  smarthosts?: ConfiguredSmarthost[];
  /** Where a delivery through a failover smarthost is reported. */
  log?: Logger;
}

/** `postfix/smtpd` is the smtp listener; the others log as `postfix/<listener>/smtpd` (master.cf syslog_name). */
const SMTPD = new RegExp(`^postfix/(?:(${LISTENERS.filter((l) => l.daemon === 'postfix' && l.name !== 'smtp').map((l) => l.name).join('|')})/)?smtpd$`);

/** Reason classes for refused SMTP commands, from Postfix's reject lines. */
const REJECT_REASONS: Array<[RegExp, string]> = [
  [/Relay access denied|Recipient address rejected: Access denied/, 'relay_denied'],
  [/Sender address rejected: not (owned|logged in)/, 'sender_mismatch'],
  [/User unknown/, 'unknown_recipient'],
  [/Client host rejected/, 'client_rejected'],
  [/Mailbox is full/, 'mailbox_full'],
  [/Message size exceeds/, 'too_large'],
  [/Sending limit reached/, 'rate_limited'],
  [/Sending is suspended/, 'suspended'],
  [/Sending limits cannot be checked|policy service is unavailable|Server configuration problem/, 'policy_unavailable'],
  [/Header From: refused/, 'header_from'],
];

/** Why a delivery was deferred, from the text Postfix puts in `status=deferred (...)`. */
const DEFERRAL_REASONS: Array<[RegExp, string]> = [
  [/Server certificate not verified/, 'tls_not_verified'],
  [/TLS is required, but was not offered/, 'tls_not_offered'],
  // DANE: the TLSA records could not be had securely (bogus, or the resolver failed): never sent without.
  [/TLSA lookup error/, 'dane_lookup_failed'],
  [/SASL authentication failed|cannot authenticate/, 'auth_failed'],
  [/Host or domain name not found|Name service error/, 'dns'],
  [/Connection refused|Connection timed out|No route to host|Network is unreachable|lost connection|timed out while/, 'connection_failed'],
  [/ said: 4\d\d/, 'upstream_refused'],
];

export function deferralReason(message: string): string {
  return DEFERRAL_REASONS.find(([pattern]) => pattern.test(message))?.[1] ?? 'other';
}

export class Metrics {
  readonly registry = new Registry();
  private readonly auth = new Counter({ name: 'relaybox_smtp_auth_total', help: 'SMTP AUTH attempts by port and result.', labelNames: ['port', 'result'], registers: [this.registry] });
  private readonly accepted = new Counter({ name: 'relaybox_messages_accepted_total', help: 'Messages accepted (250 after DATA) by port.', labelNames: ['port'], registers: [this.registry] });
  private readonly rejections = new Counter({ name: 'relaybox_smtp_rejections_total', help: 'Refused SMTP commands by reason class.', labelNames: ['reason'], registers: [this.registry] });
  private readonly deliveries = new Counter({ name: 'relaybox_deliveries_total', help: 'Delivery attempts by destination (upstream = relay/MX, local = mailboxes) and status.', labelNames: ['destination', 'status'], registers: [this.registry] });
  private readonly deferrals = new Counter({ name: 'relaybox_deliveries_deferred_total', help: 'Deferred deliveries by destination and reason class (tls_not_verified, tls_not_offered, dane_lookup_failed, auth_failed, dns, connection_failed, upstream_refused, other).', labelNames: ['destination', 'reason'], registers: [this.registry] });
  private readonly limited = new Counter({ name: 'relaybox_rate_limited_total', help: 'Messages refused by the per-user sending limits, by limit.', labelNames: ['limit'], registers: [this.registry] });
  private readonly adminActions = new Counter({ name: 'relaybox_admin_actions_total', help: 'Changes made by operators (CLI, admin API, console), by action (queue_hold, queue_release, ban_lift, user_suspend, dkim_rotate_switch...).', labelNames: ['action'], registers: [this.registry] });

  private readonly milters = new MilterMetrics(this.registry);
  private readonly smarthosts: SmarthostDeliveries;

  constructor(sources: MetricSources) {
    this.smarthosts = new SmarthostDeliveries(this.registry, sources.smarthosts ?? [], sources.log);
    const registers = [this.registry];
    new Gauge({
      name: 'relaybox_queue_messages',
      help: 'Messages in the Postfix queue, read from the queue directory.',
      labelNames: ['queue'],
      registers,
      collect() {
        for (const queue of ['active', 'deferred', 'incoming', 'hold']) this.set({ queue }, countFiles(`${sources.queueDir}/${queue}`));
      },
    });
    new Gauge({
      name: 'relaybox_queue_oldest_message_age_seconds',
      help: "Age of the oldest message in the Postfix queue, any state (0 when empty), from its arrival time as postqueue -j reports it (a queue file's mtime is its next retry).",
      registers,
      async collect() {
        try {
          this.set((await sources.oldestQueuedSeconds?.()) ?? 0);
        } catch {
          // postqueue failed: the last value stays (a scrape never fails for it)
        }
      },
    });
    new Gauge({
      name: 'relaybox_daemon_restarts',
      help: 'Restarts of each daemon since the supervisor started.',
      labelNames: ['daemon'],
      registers,
      collect() {
        for (const [daemon, status] of Object.entries(sources.readiness().daemons)) this.set({ daemon }, status.restarts);
      },
    });
    new Gauge({
      name: 'relaybox_daemon_up',
      help: '1 while the daemon is running.',
      labelNames: ['daemon'],
      registers,
      collect() {
        for (const [daemon, status] of Object.entries(sources.readiness().daemons)) this.set({ daemon }, status.state === 'running' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'relaybox_ready',
      help: '1 while /ready answers 200: every daemon running and every check passing.',
      registers,
      collect() {
        this.set(sources.readiness().ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'relaybox_bans_active',
      help: 'Client addresses currently banned after failed authentications.',
      registers,
      collect() {
        this.set(sources.bansActive());
      },
    });
    new Gauge({
      name: 'relaybox_users_suspended',
      help: 'Users whose sending is suspended after too many messages over their limits.',
      registers,
      async collect() {
        this.set((await sources.suspendedUsers?.()) ?? 0);
      },
    });
    new Gauge({
      name: 'relaybox_probe_latency_seconds',
      help: 'Latency of the last readiness probe by check.',
      labelNames: ['check'],
      registers,
      collect() {
        for (const [check, result] of Object.entries(sources.readiness().checks)) if (result.latencyMs !== undefined) this.set({ check }, result.latencyMs / 1000);
      },
    });
    new Gauge({
      name: 'relaybox_probe_up',
      help: '1 when the last readiness probe of the check passed.',
      labelNames: ['check'],
      registers,
      collect() {
        for (const [check, result] of Object.entries(sources.readiness().checks)) this.set({ check }, result.ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'relaybox_queue_stranded_messages',
      help: 'Messages this relay replica could neither deliver nor hand to a peer when it last stopped, still in its queue (0 once delivered).',
      registers,
      collect() {
        this.set(sources.strandedMessages?.() ?? 0);
      },
    });
    new Gauge({
      name: 'relaybox_tls_certificate_expiry_timestamp_seconds',
      help: 'When the served TLS certificate expires (Unix time).',
      registers,
      collect() {
        try {
          this.set(Date.parse(new X509Certificate(readFileSync(sources.certFile())).validTo) / 1000);
        } catch {
          this.set(0);
        }
      },
    });
  }

  /** A change an operator made (operations/audit.ts). */
  adminAction(action: string): void {
    this.adminActions.inc({ action });
  }

  /** A message refused by a per-user sending limit. */
  rateLimited(limit: string): void {
    this.limited.inc({ limit });
  }

  /** Counts what a Postfix log line says happened. */
  observe(line: DaemonLogLine): void {
    this.milters.observe(line);
    this.smarthosts.observe(line);
    const program = line.program ?? '';
    const smtpd = SMTPD.exec(program);
    if (smtpd) {
      const port = smtpd[1] ?? 'smtp';
      if (line.msg.startsWith('disconnect from ')) {
        const auth = /\bauth=(\d+)(?:\/(\d+))?/.exec(line.msg);
        if (auth) {
          const ok = Number(auth[1]);
          const total = Number(auth[2] ?? auth[1]);
          if (ok > 0) this.auth.inc({ port, result: 'success' }, ok);
          if (total > ok) this.auth.inc({ port, result: 'failure' }, total - ok);
        }
        const data = /\bdata=(\d+)/.exec(line.msg);
        if (data && Number(data[1]) > 0) this.accepted.inc({ port }, Number(data[1]));
      } else if (/: reject: [A-Z-]+ from /.test(line.msg) || line.msg.startsWith('NOQUEUE: reject:')) {
        const reason = REJECT_REASONS.find(([pattern]) => pattern.test(line.msg))?.[1] ?? 'other';
        this.rejections.inc({ reason });
      }
      return;
    }
    // A milter's refusal at the end of DATA (the header From: check) is logged by cleanup.
    if (program === 'postfix/cleanup' && /: milter-reject: /.test(line.msg)) {
      this.rejections.inc({ reason: REJECT_REASONS.find(([pattern]) => pattern.test(line.msg))?.[1] ?? 'other' });
      return;
    }
    const status = /\bstatus=(sent|deferred|bounced)\b/.exec(line.msg)?.[1];
    if (status && (program === 'postfix/smtp' || program === 'postfix/lmtp')) {
      const destination = program === 'postfix/smtp' ? 'upstream' : 'local';
      this.deliveries.inc({ destination, status });
      if (status === 'deferred') this.deferrals.inc({ destination, reason: deferralReason(/\bstatus=deferred \((.*)\)\s*$/.exec(line.msg)?.[1] ?? '') });
    }
  }
}

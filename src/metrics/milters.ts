// Metrics of the milters, from the log lines: signatures OpenDKIM added (Postfix logs each one),
// the filter's verdicts (rspamd's per-message line) and what Postfix refused because of a milter.
import { Counter, type Registry } from 'prom-client';
import type { DaemonLogLine } from '../daemons/log-line.ts';

export class MilterMetrics {
  private readonly signatures: Counter;
  private readonly scans: Counter;
  private readonly refusals: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.signatures = new Counter({ name: 'relaybox_dkim_signatures_total', help: 'DKIM signatures added to outgoing mail (one per selector).', registers });
    this.scans = new Counter({ name: 'relaybox_filter_scans_total', help: "Inbound messages the filter scanned, by its action (no action, add header, reject).", labelNames: ['action'], registers });
    this.refusals = new Counter({
      name: 'relaybox_milter_refusals_total',
      help: 'SMTP commands refused because of a milter: unavailable (451, the signer or filter is down) or refused (5xx verdict of the filter).',
      labelNames: ['result'],
      registers,
    });
  }

  observe(line: DaemonLogLine): void {
    const program = line.program ?? '';
    if (program === 'postfix/cleanup' && /milter-header-info: .*: dkim signed d=/.test(line.msg)) this.signatures.inc();
    else if (program.startsWith('postfix/') && /milter-reject: /.test(line.msg)) this.refusals.inc({ result: /milter-reject: [A-Z-]+ from [^:]*: (451 )?4\.\d/.test(line.msg) ? 'unavailable' : 'refused' });
    else if (program.startsWith('rspamd/')) {
      const action = /rspamd_task_write_log: .*\(default: [FTS] \(([a-z ]+)\)/.exec(line.msg)?.[1];
      if (action) this.scans.inc({ action });
    }
  }
}

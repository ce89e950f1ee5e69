// What the admin commands print for people; --json prints the supervisor's answer instead.
import { age, table, when } from './tables.ts';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function renderStatus(s: Any): string {
  const daemons = Object.entries(s.daemons as Record<string, Any>).map(([name, d]) => [name, d.state, String(d.restarts ?? 0)]);
  const checks = Object.entries(s.checks as Record<string, Any>).map(([name, c]) => [name, c.ok ? 'ok' : 'FAILING', c.error ?? (c.latencyMs !== undefined ? `${c.latencyMs} ms` : '')]);
  const q = s.queue as Any;
  return [
    `replica ${s.replica} (ROLE=${s.role}, ${s.hostname}): ${s.ready ? 'ready' : 'NOT READY'}${s.healthy ? '' : `, UNHEALTHY: ${s.error ?? ''}`}`,
    ...(s.failing as string[]).map((f) => `  failing: ${f}`),
    ...(s.degraded as string[]).map((d) => `  degraded: ${d}`),
    '',
    table(['DAEMON', 'STATE', 'RESTARTS'], daemons),
    '',
    table(['CHECK', 'RESULT', 'DETAIL'], checks),
    '',
    `queue: ${q.total} message(s) (${Object.entries(q.byState as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ')}), oldest ${age(q.oldestSeconds)}`,
    `bans: ${s.bans}; suspended users: ${(s.suspendedUsers as string[]).join(', ') || 'none'}; shared state: ${s.sharedState} (bans and suspensions ${s.sharedState === 'redis' ? 'act on every replica' : 'are this replica\'s'}; the queue is this replica\'s own)`,
  ].join('\n');
}

export function renderQueue(answer: Any): string {
  const messages = answer.messages as Any[];
  const rows = messages.map((m) => [m.id, m.state, age(m.ageSeconds), String(m.size), m.sender || '<>', (m.recipients as Any[]).map((r) => r.address).join(','), m.reason ?? '']);
  const s = answer.summary as Any;
  const counts = `${messages.length} shown; queue of replica ${answer.replica}: ${s.total} (${Object.entries(s.byState as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ')})`;
  const destinations = Object.entries(s.byDestination as Record<string, number>).sort((a, b) => b[1] - a[1]);
  const byDestination = destinations.length > 0 ? `\nby destination: ${destinations.slice(0, 10).map(([domain, n]) => `${domain} ${n}`).join(', ')}${destinations.length > 10 ? ', ...' : ''}` : '';
  return messages.length === 0 ? `no message matches; ${counts}${byDestination}` : `${table(['ID', 'STATE', 'AGE', 'SIZE', 'SENDER', 'RECIPIENTS', 'LAST DEFERRAL'], rows)}\n${counts}${byDestination}`;
}

export function renderShown(answer: Any): string {
  const m = answer.message as Any;
  return [
    `id ${m.id}  state ${m.state}  age ${age(m.ageSeconds)}  size ${m.size}  user ${m.user ?? '-'}`,
    `sender ${m.sender || '<>'}`,
    ...(m.recipients as Any[]).map((r) => `recipient ${r.address}${r.reason ? `  (${r.reason})` : ''}`),
    '',
    String(answer.headers).trimEnd(),
    ...(answer.body !== undefined ? ['', String(answer.body).trimEnd()] : []),
  ].join('\n');
}

export function renderActed(answer: Any): string {
  const ids = answer.ids as string[];
  const missing = (answer.missing as string[] | undefined) ?? [];
  return `${answer.action}: ${ids.length} message(s)${ids.length ? `: ${ids.join(' ')}` : ''}${missing.length ? `\nnot found (or not in a state ${answer.action} applies to): ${missing.join(' ')}` : ''}`;
}

export function renderUsers(users: Any[]): string {
  const rows = users.map((u) => [
    u.address,
    u.suspended ? `SUSPENDED: ${u.suspension?.reason ?? ''}` : 'active',
    u.sent ? `${u.sent.messagesPerHour}/${u.sent.limits.messagesPerHour || '∞'} per h, ${u.sent.recipientsPerDay}/${u.sent.limits.recipientsPerDay || '∞'} rcpt per d` : '-',
    when(u.lastLogin),
    (u.aliases as string[]).join(',') || '-',
  ]);
  return table(['USER', 'STATE', 'SENT / LIMIT', 'LAST LOGIN (this run)', 'ALIASES'], rows) || 'no users';
}

export function renderBans(bans: Any[]): string {
  return table(['ADDRESS', 'REMAINING', 'UNTIL', 'PORTS'], bans.map((b) => [b.address, age(b.remainingSeconds), when(b.until), (b.ports as string[]).join(' ')])) || 'no bans in force';
}

export function renderDkim(domains: Any[]): string {
  if (domains.length === 0) return 'DKIM signing is off';
  return domains
    .map((d) => {
      const head = `${d.domain}: keys ${d.keysFrom === 'DKIM_KEY_DIR' ? 'from DKIM_KEY_DIR (read-only: rotate them there)' : 'generated in STATE_DIR/dkim'}${d.retireAfter ? `; old selector listed until ${when(d.retireAfter)}` : ''}`;
      const rows = (d.selectors as Any[]).map((s) => [s.selector, s.role, s.check ? `${s.check.status}: ${s.check.detail}` : 'no key file']);
      return `${head}\n${table(['SELECTOR', 'ROLE', 'PUBLISHED RECORD'], rows)}`;
    })
    .join('\n\n');
}

export function renderRecord(record: Any): string {
  return `${record.name}. 3600 IN TXT "${String(record.value).match(/.{1,255}/g)!.join('" "')}"`;
}

export function renderAppPasswords(answer: Any): string {
  const rows = (answer.passwords as Any[]).map((p) => [p.user, p.name, p.scope, when(p.created), when(p.lastUsed)]);
  const only = (answer.appPasswordsOnly as string[]).length > 0 ? `\nown password refused for SMTP AUTH (APP_PASSWORDS_ONLY): ${(answer.appPasswordsOnly as string[]).join(', ')}` : '';
  return rows.length === 0 ? `no app passwords${only}` : `${table(['USER', 'NAME', 'SCOPE', 'CREATED', 'LAST USED'], rows)}${only}`;
}

// The report's load sections: throughput and signing, stalls, TLS tickets, authentication, chaos,
// and the configuration differences.
import { CACHE_LINES, SCHEMES } from './auth.ts';
import { recoveryByKind } from './chaos.ts';
import { MESSAGE_SIZE, P } from './common.ts';
import type { AllResults } from './report.ts';
import { NAMES, medOf, medP95, perSecond, pooledP99, rate } from './report-format.ts';
import { CELLS, HEAVIEST, MAIN_TARGETS, UNSIGNED_CELLS, key, type Run, type Target } from './throughput.ts';
import { fmt, median } from './stats.ts';

/** A hash's scheme and parameters without its salt and digest, e.g. {ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1. */
function hashParameters(hash: string): string {
  const parts = hash.split('$');
  const kept = [parts[0]!];
  for (const part of parts.slice(1)) {
    if (!/^([0-9a-z]{1,8}|[a-z]=[0-9]+(,[a-z]=[0-9]+)*)$/.test(part)) break;
    kept.push(part);
  }
  return kept.join('$');
}

export function loadSections(r: AllResults, L: string[]): void {
  const { tp, auth, chaos } = r;
  const runsOf = (c: number, m: number, t: Target) => tp.runs.get(key(c, m, t));
  const maxOf = (v: number[]) => (v.length ? Math.max(...v) : Number.NaN);
  // ---------------------------------------------------------------- throughput
  L.push(`## Authenticated submission throughput (port 587: STARTTLS + AUTH PLAIN + ${MESSAGE_SIZE / 1024} KB message)`);
  L.push('');
  L.push(`![messages/s per cell](${r.chartFile})`);
  L.push('');
  L.push(`Each cell ran ${P.reps} times per target, every (cell, target) run in a shuffled order per repetition; each run ${P.warmupMs / 1000} s warm-up + ${P.durationMs / 1000} s measured. messages/s: median (min–max). Latency p50 / p99 (ms) and CPU: medians over the runs. Baseline (b) signs with OpenDKIM like relaybox (relaybox's rendered OpenDKIM configuration and key) and uses relaybox's TLS settings (no TLS 1.3 tickets). The /health + /ready poller (/health, then /ready, then a 50 ms pause, over and over; fresh connections) runs during every run, whatever the target; its p99 columns pool every request of the cell's relaybox runs.`);
  L.push('');
  L.push('| clients × msgs/conn | ceiling (a) | baseline (b) | relaybox | relaybox / (b) | ≥ 95% | latency (b) | latency relaybox | CPU ms/msg (b) | CPU ms/msg relaybox: daemons + supervisor | /health p99 | /ready p99 | supervisor RSS max MiB | ≥0.9 s stalls (b) / relaybox |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const stalls = (runs: Run[] | undefined) => {
    const all: Record<string, number> = {};
    for (const x of runs ?? []) for (const [verb, n] of Object.entries(x.result.stalls)) all[verb] = (all[verb] ?? 0) + n;
    const s = Object.entries(all).map(([verb, n]) => `${n}× ${verb}`).join(', ');
    return s || '0';
  };
  for (const [c, m] of CELLS) {
    const [a, b, x] = MAIN_TARGETS.map((t) => runsOf(c, m, t));
    const ratio = perSecond(x).median / perSecond(b).median;
    L.push(
      `| ${c} × ${m} | ${rate(a)} | ${rate(b)} | ${rate(x)} | ${fmt(ratio * 100, 0)}% | ${Number.isFinite(ratio) ? (ratio >= 0.95 ? 'yes' : '**no**') : 'n/a'} | ${medOf(b, (q) => q.result.p50)} / ${medOf(b, (q) => q.result.p99)} | ${medOf(x, (q) => q.result.p50)} / ${medOf(x, (q) => q.result.p99)} | ${medOf(b, (q) => q.cpu?.daemons, 2)} | ${medOf(x, (q) => q.cpu?.daemons, 2)} + ${medOf(x, (q) => q.cpu?.supervisor, 2)} | ${fmt(pooledP99(x, 'health').p99, 1)} | ${fmt(pooledP99(x, 'ready').p99, 1)} | ${fmt(maxOf((x ?? []).map((q) => q.supervisor?.rssMax ?? Number.NaN).filter(Number.isFinite)), 1)} | ${stalls(b)} / ${stalls(x)} |`,
    );
  }
  if (tp.errors.length) L.push('', `Failed runs: ${tp.errors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  const firstErrors = [...tp.runs.entries()].flatMap(([k, runs]) => runs.flatMap((x) => x.result.firstErrors.slice(0, 1).map((e) => `${k}: ${e}`))).slice(0, 6);
  if (firstErrors.length) L.push('', `First errors: ${firstErrors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  L.push('');
  L.push('**Signing, separately**: the same cells with neither side signing (baseline (b) without OpenDKIM, relaybox with `DKIM_SIGNING=off`), in the same shuffled runs:');
  L.push('');
  L.push('| clients × msgs/conn | baseline (b) without OpenDKIM | relaybox, DKIM_SIGNING=off | relaybox / (b), unsigned | (b) signed ÷ unsigned | relaybox signed ÷ unsigned | CPU ms/msg (b) / relaybox |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const cell of UNSIGNED_CELLS) {
    const [c, m] = cell.split('x').map(Number) as [number, number];
    const bn = runsOf(c, m, 'baseline-nodkim');
    const rn = runsOf(c, m, 'relaybox-nodkim');
    const cost = (signed: Run[] | undefined, unsigned: Run[] | undefined) => `${fmt((perSecond(signed).median / perSecond(unsigned).median) * 100, 0)}%`;
    L.push(`| ${c} × ${m} | ${rate(bn)} | ${rate(rn)} | ${fmt((perSecond(rn).median / perSecond(bn).median) * 100, 0)}% | ${cost(runsOf(c, m, 'baseline'), bn)} | ${cost(runsOf(c, m, 'relaybox'), rn)} | ${medOf(bn, (q) => q.cpu?.daemons, 2)} / ${medOf(rn, (q) => q.cpu?.daemons, 2)} + ${medOf(rn, (q) => q.cpu?.supervisor, 2)} |`);
  }
  L.push('');

  // ---------------------------------------------------------------- stalls
  L.push(`## The ~1 s stalls in ${HEAVIEST.replace('x', ' × ')}`);
  L.push('');
  if (!tp.traced) L.push('Not traced: `perf trace` is not available here (needs root and perf).');
  else {
    L.push(`During every ${HEAVIEST.replace('x', ' × ')} run, \`perf trace -a --duration 900 -e clock_nanosleep,select,pselect6 --call-graph dwarf\` recorded every sleep of ≥ 0.9 s on the machine (\`sleep()\` is clock_nanosleep; Postfix's \`doze()\` is select) with its user stack; each sleeping pid is attributed to its target by process group. Counted over all ${P.reps} runs per target (client-side waits: commands whose reply took ≥ 0.9 s, summed over the same runs):`);
    L.push('');
    L.push('| target | client-side ≥0.9 s waits, by command | process | sleep | called from (innermost first) | count |');
    L.push('| --- | --- | --- | --- | --- | --- |');
    for (const t of ['baseline', 'relaybox', 'baseline-nodkim', 'relaybox-nodkim'] as Target[]) {
      const [c, m] = HEAVIEST.split('x').map(Number) as [number, number];
      const mine = tp.sleeps.filter((s) => s.target === t);
      const groups = new Map<string, { n: number; ms: number[] }>();
      for (const s of mine) {
        const g = `${s.comm}|${s.syscall}|${s.caller}`;
        const e = groups.get(g) ?? { n: 0, ms: [] };
        e.n += 1;
        e.ms.push(s.ms);
        groups.set(g, e);
      }
      if (groups.size === 0) L.push(`| ${NAMES[t]} | ${stalls(runsOf(c, m, t))} | — | — | none | 0 |`);
      for (const [g, e] of [...groups.entries()].sort((x, y) => y[1].n - x[1].n)) {
        const [comm, syscall, caller] = g.split('|');
        L.push(`| ${NAMES[t]} | ${stalls(runsOf(c, m, t))} | ${comm} | ${syscall}, ${fmt(median(e.ms), 0)} ms | \`${caller}\` | ${e.n} |`);
      }
    }
  }
  L.push('');

  L.push('The mechanism on demand: Postfix\'s queue manager (qmgr) paused with SIGSTOP for 3 s in the middle of one 8 × 20 run (7 s measured), so that mail arrives faster than qmgr picks it up, as it does when both cores are saturated; traced the same way:');
  L.push('');
  L.push('| target | msg/s | client-side ≥0.9 s waits | traced ≥0.9 s sleeps (process, syscall, called from: count) |');
  L.push('| --- | --- | --- | --- |');
  for (const f of tp.flow) {
    const g = new Map<string, number>();
    for (const s of f.sleeps) g.set(`${s.comm} ${s.syscall} \`${s.caller}\``, (g.get(`${s.comm} ${s.syscall} \`${s.caller}\``) ?? 0) + 1);
    const st = Object.entries(f.stalls).map(([verb, n]) => `${n}× ${verb}`).join(', ') || '0';
    L.push(`| ${f.label} | ${fmt(f.perSecond, 1)} | ${st} | ${[...g.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join('; ') || 'none'} |`);
  }
  L.push('');

  // ---------------------------------------------------------------- tickets
  L.push('## TLS 1.3 session tickets (why baseline (b) uses relaybox\'s TLS settings)');
  L.push('');
  const fr = tp.tickets.firstReply;
  const tl = (t: string, c: number) => {
    const v = (tp.tickets.load.get(`${t}:${c}`) ?? []).map((x) => x.perSecond);
    return v.length ? `${fmt(median(v), 1)} (${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)})` : 'n/a';
  };
  L.push('| target | first reply after the TLS handshake (EHLO → 250), median / p95 | 1 × 1 msg/s | 8 × 1 msg/s |');
  L.push('| --- | --- | --- | --- |');
  L.push(`| baseline (b) with the tutorial's stock TLS settings (one ticket per handshake) | ${medP95(fr.stock ?? [], 1)} | ${tl('stock', 1)} | ${tl('stock', 8)} |`);
  L.push(`| baseline (b) as measured above (relaybox's TLS settings: \`NumTickets = 0\`, empty \`tls_session_ticket_cipher\`) | ${medP95(fr.baseline ?? [], 1)} | ${tl('baseline', 1)} | ${tl('baseline', 8)} |`);
  L.push(`| relaybox | ${medP95(fr.relaybox ?? [], 1)} | | |`);
  L.push(`| ceiling (a) | ${medP95(fr.ceiling ?? [], 1)} | | |`);
  L.push('');

  // ---------------------------------------------------------------- auth
  L.push('## Authentication cost by password hash, and Dovecot\'s auth cache');
  L.push('');
  L.push(`One relaybox instance, one user per scheme (hash made by \`doveadm pw -s SCHEME\` with Dovecot's defaults, as \`relaybox hash-password\` does; ${SCHEMES.map((s) => (auth.hashes[s] ? `\`${hashParameters(auth.hashes[s])}$…\`` : s)).join(', ')}). "Cache on" appends \`${CACHE_LINES.join('`, `')}\` to the rendered dovecot.conf (reloaded with SIGHUP); "off" is relaybox as rendered. AUTH latency: AUTH PLAIN → 235 over ${P.authSerial} fresh sessions one after another (the first one fills the cache); Dovecot CPU per AUTH over the same sessions (from /proc, in 10 ms ticks); throughput: 8 clients × 1 message per session (an AUTH per message), ${P.authReps} runs of ${P.authMs / 1000} s per row, shuffled.`);
  L.push('');
  L.push('| scheme | auth cache | AUTH → 235, median / p95 | Dovecot CPU ms per AUTH | 8 × 1 msg/s, median (min–max) | errors | Dovecot RSS max under load |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const s of SCHEMES) {
    for (const cache of ['off', 'on']) {
      const cell = auth.cells.get(`${s}:${cache}`);
      const v = (cell?.load ?? []).map((x) => x.perSecond);
      L.push(`| ${s} | ${cache} | ${medP95(cell?.authMs ?? [], 1)} | ${fmt(cell?.cpuPerAuth ?? Number.NaN, 1)} | ${v.length ? `${fmt(median(v), 1)} (${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)})` : 'n/a'} | ${(cell?.load ?? []).reduce((a, x) => a + x.errors, 0)} | ${fmt(cell?.rssMax ?? Number.NaN, 0)} MiB |`);
    }
  }
  if (auth.errors.length) L.push('', `Failed: ${auth.errors.map((e) => `\`${e.slice(0, 160)}\``).join('; ')}`);
  L.push('');

  // ---------------------------------------------------------------- chaos
  L.push('## Chaos: kill -9 at random with mail in flight');
  L.push('');
  const c = chaos;
  L.push(`${c.kills.length} kills in ${fmt(c.durationMs / 1000, 0)} s (Postfix's master, a random Postfix child, Dovecot's master, a random Dovecot child, OpenDKIM; a master or OpenDKIM only once it has run ≥ 10 s, so the supervisor's crash-loop backoff is not what is measured) while 3 senders submit on 587 (AUTH, relayed to an upstream sink) and 2 send inbound mail on 25 to a local mailbox (\`SPAM_FILTER=off\`: rspamd is not a kill target, and offline its SPF/DMARC lookups would only slow port 25), up to 5 messages per session with 40 ms between messages; a sender retries a refused or cut message with the same Message-ID. \`RESTART_BUDGET=1000\`.`);
  L.push('');
  L.push('| messages | count |');
  L.push('| --- | --- |');
  L.push(`| got 250 (587 / 25) | ${c.accepted} (${c.acceptedByPort['587']} / ${c.acceptedByPort['25']}) |`);
  L.push(`| arrived (upstream sink or Maildir), distinct | ${c.arrived} |`);
  L.push(`| **lost** (250 but never arrived) | **${c.lost.length}**${c.lost.length ? ` (${c.lost.slice(0, 3).join(', ')}…)` : ''} |`);
  L.push(`| duplicates (arrived more than once) | ${c.duplicates} |`);
  L.push(`| arrived without a 250 (cut after the end of DATA, then resent) | ${c.arrivedWithout250} |`);
  L.push(`| still queued at the end | ${c.stillQueued}${c.stillQueued ? ` (${c.queueAtEnd.join('; ')}; files in incoming that \`postqueue -p\` does not list are messages a killed process never finished writing, which got no 250)` : ''} |`);
  L.push(`| queue 60 s after the last kill | ${c.flushedByHand ? `${c.queuedAfter60} queue files, then flushed by hand (\`postqueue -f\`); deferral reasons: ${c.deferred.join('; ')}` : 'empty'} |`);
  L.push(`| sender failures, by kind (each retried) | ${Object.entries(c.failures).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'} |`);
  L.push('');
  L.push('| killed | kills | recovery median | max | not recovered in 30 s |');
  L.push('| --- | --- | --- | --- | --- |');
  for (const k of recoveryByKind(c)) L.push(`| ${k.kind} | ${k.n} | ${fmt(k.median)} ms | ${fmt(k.max)} ms | ${k.unrecovered} |`);
  L.push('');
  L.push(`Recovery = /ready 200 again (and for a master or OpenDKIM, the supervisor's restart count up). /ready was not 200 for ${fmt(c.notReadyMs / 1000, 1)} s of ${fmt(c.durationMs / 1000, 0)} s (${fmt((c.notReadyMs / c.durationMs) * 100, 1)}%). Restarts counted by the supervisor: ${Object.entries(c.restarts).map(([k, n]) => `${k} ${n}`).join(', ')}; /health at the end: ${c.healthy ? '200' : '**not 200**'}. Children killed: ${[...new Set(c.kills.filter((k) => k.kind.endsWith('child')).map((k) => k.victim))].sort().join(', ')}.`);
  L.push('');

  // ---------------------------------------------------------------- config diff
  L.push('## Configuration differences that can matter (`postconf -n`, relaybox vs baseline (b))');
  L.push('');
  L.push('| parameter | relaybox | baseline (b) |');
  L.push('| --- | --- | --- |');
  L.push(tp.mainCfDiff || '| (none) | | |');
  L.push('');
}

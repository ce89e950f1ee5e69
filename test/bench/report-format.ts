// Formatting shared by the report's sections.
import { fmt, median, percentile } from './stats.ts';
import type { Run, Target } from './throughput.ts';

export const NAMES: Record<Target, string> = { ceiling: 'ceiling (a)', baseline: 'baseline (b)', relaybox: 'relaybox', 'baseline-nodkim': 'baseline (b) without OpenDKIM', 'relaybox-nodkim': 'relaybox, DKIM_SIGNING=off' };

export const ms = (values: number[], d = 0) => (values.length ? `${fmt(median(values), d)} ms (${fmt(Math.min(...values), d)}–${fmt(Math.max(...values), d)})` : 'n/a');
export const medP95 = (values: number[], d = 0) => (values.length ? `${fmt(median(values), d)} / ${fmt(percentile(values, 95), d)} ms` : 'n/a');
/** Met / not met; 'not measured' when any figure it rests on is missing. */
export const yes = (ok: boolean, ...figures: number[]) => (figures.some((f) => !Number.isFinite(f)) ? 'not measured' : ok ? '**yes**' : '**no**');

export function perSecond(runs: Run[] | undefined): { median: number; min: number; max: number } {
  const v = (runs ?? []).map((r) => r.result.perSecond);
  return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v) } : { median: Number.NaN, min: Number.NaN, max: Number.NaN };
}

export function rate(runs: Run[] | undefined): string {
  const s = perSecond(runs);
  if (!Number.isFinite(s.median)) return 'n/a';
  const errors = (runs ?? []).reduce((a, r) => a + r.result.errors, 0);
  return `${fmt(s.median, 1)} (${fmt(s.min, 0)}–${fmt(s.max, 0)})${errors ? ` **${errors} errors**` : ''}`;
}

export const medOf = (runs: Run[] | undefined, f: (r: Run) => number | undefined, d = 1) => {
  const v = (runs ?? []).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? fmt(median(v), d) : 'n/a';
};


/** p99 over every sample of the runs pooled, with the sample count and failed polls. */
export function pooledP99(runs: Run[] | undefined, path: 'health' | 'ready'): { p99: number; samples: number; failures: number } {
  const values = (runs ?? []).flatMap((r) => r.poll[path].values);
  return { p99: percentile(values, 99), samples: values.length, failures: (runs ?? []).reduce((a, r) => a + r.poll[path].failures, 0) };
}

// Small statistics helpers for the benchmarks: nearest-rank percentiles, formatting.

/** Nearest-rank percentile (p in 0..100) of the values; NaN when there are none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const median = (values: number[]): number => percentile(values, 50);

/** "1234 ms" style, fixed decimals; "n/a" for NaN. */
export function fmt(value: number, decimals = 0, unit = ''): string {
  if (!Number.isFinite(value)) return 'n/a';
  return `${value.toFixed(decimals)}${unit}`;
}

/** Median / p95 of trials in ms, e.g. "812 / 1043 ms". */
export function medP95(values: number[], decimals = 0): string {
  if (values.length === 0) return 'n/a';
  return `${fmt(median(values), decimals)} / ${fmt(percentile(values, 95), decimals)} ms`;
}

export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  return `${((a / b) * 100).toFixed(0)}%`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

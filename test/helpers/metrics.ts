// Reading /metrics (Prometheus text format) in tests: a series that is not there is an error, never 0.
import assert from 'node:assert/strict';

/** The value of the series `name` whose labels include `labels`, or undefined when there is none. */
export function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const matches = text.split('\n').filter((line) => {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) return false;
    const labelText = line.startsWith(`${name}{`) ? line.slice(name.length + 1, line.indexOf('}')) : '';
    const have = labelText === '' ? [] : labelText.split(/,(?=\w+=")/);
    return wanted.every((w) => have.includes(w));
  });
  assert.ok(matches.length <= 1, `${name}${JSON.stringify(labels)} matches ${matches.length} series: ${matches.join(' | ')}`);
  const line = matches[0];
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A gauge: the series must exist. */
export function gauge(text: string, name: string, labels: Record<string, string> = {}): number {
  const value = series(text, name, labels);
  assert.ok(value !== undefined, `/metrics has no series ${name}${Object.keys(labels).length ? JSON.stringify(labels) : ''}`);
  return value;
}

/**
 * A counter with labels: prom-client shows a labelled series only once it was incremented, so a
 * missing one is 0 here, but the metric itself (its # TYPE line) must exist.
 */
export function counter(text: string, name: string, labels: Record<string, string> = {}): number {
  assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'), `/metrics has no counter ${name}`);
  return series(text, name, labels) ?? 0;
}

export async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
  return response.text();
}

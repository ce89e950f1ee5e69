// How Postfix files are written: a header, `name = value` lines, texthash: tables.
export const HEADER = '# Rendered by relaybox from the environment at every start; edits here are overwritten.\n';

export type Setting = [string, string | number];

/**
 * `name = value` lines. Two concerns may need the same setting (e.g. virtual_alias_domains for the
 * role addresses and for SRS): the same value is written once; different values are a bug, refused.
 */
export function lines(settings: Array<Setting | false>): string {
  const seen = new Map<string, string>();
  const written: string[] = [];
  for (const entry of settings) {
    if (entry === false) continue;
    const [key, value] = [entry[0], String(entry[1])];
    const known = seen.get(key);
    if (known === value) continue;
    if (known !== undefined) throw new Error(`${key} rendered twice, as "${known}" and as "${value}"`);
    seen.set(key, value);
    written.push(`${key} = ${value}`.trimEnd());
  }
  return written.join('\n');
}

/** texthash: tables; keys and values never contain whitespace (validated addresses). */
export function table(rows: Array<[string, string]>): string {
  return `${HEADER}${rows.map(([key, value]) => `${key} ${value}\n`).join('')}`;
}

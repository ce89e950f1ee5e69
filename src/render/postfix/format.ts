// How Postfix files are written: a header, `name = value` lines, texthash: tables.
export const HEADER = '# Rendered by relaybox from the environment at every start; edits here are overwritten.\n';

export type Setting = [string, string | number];

export function lines(settings: Array<Setting | false>): string {
  return settings
    .filter((entry): entry is Setting => entry !== false)
    .map(([key, value]) => `${key} = ${value}`.trimEnd())
    .join('\n');
}

/** texthash: tables; keys and values never contain whitespace (validated addresses). */
export function table(rows: Array<[string, string]>): string {
  return `${HEADER}${rows.map(([key, value]) => `${key} ${value}\n`).join('')}`;
}

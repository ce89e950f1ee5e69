// MTA-STS (RFC 8461) as data: the `_mta-sts` TXT record, the policy file, and what a policy means
// for Postfix's smtp (a policy-table value). Pure.

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** `mx.example.com` or `*.example.net`. */
  mx: string[];
  maxAgeSeconds: number;
}

/** The id of a `v=STSv1; id=...` record among a name's TXT records, or undefined. */
export function stsRecordId(txt: string[][]): string | undefined {
  const records = txt.map((chunks) => chunks.join('')).filter((record) => /^v=STSv1\s*(;|$)/.test(record));
  if (records.length !== 1) return undefined; // none, or several: RFC 8461 §3.1 says no policy
  return /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(;|$)/.exec(records[0]!)?.[1];
}

/** The policy file's fields, or an error naming what is wrong. */
export function parseStsPolicy(text: string): { ok: true; policy: StsPolicy } | { ok: false; error: string } {
  const fields = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    fields.set(key, [...(fields.get(key) ?? []), line.slice(colon + 1).trim()]);
  }
  if (fields.get('version')?.[0] !== 'STSv1') return { ok: false, error: 'no "version: STSv1" line' };
  const mode = fields.get('mode')?.[0];
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') return { ok: false, error: `mode ${JSON.stringify(mode ?? '')} is not enforce, testing or none` };
  const maxAge = Number(fields.get('max_age')?.[0]);
  if (!Number.isInteger(maxAge) || maxAge < 0 || maxAge > 31_557_600) return { ok: false, error: 'max_age is not a number of seconds up to 31557600' };
  const mx = fields.get('mx') ?? [];
  if (mode !== 'none' && mx.length === 0) return { ok: false, error: 'no mx line' };
  if (mx.some((pattern) => !/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+\.?$/i.test(pattern))) return { ok: false, error: 'an mx line is not a host name or *.domain' };
  return { ok: true, policy: { mode, mx: mx.map((p) => p.toLowerCase().replace(/\.$/, '')), maxAgeSeconds: maxAge } };
}

/** Postfix's `match=` list for the MX patterns: `*.example.net` is `.example.net`. */
export function matchList(policy: StsPolicy): string {
  return policy.mx.map((pattern) => (pattern.startsWith('*.') ? pattern.slice(1) : pattern)).join(':');
}

/** An enforced policy: TLS, a chain to a trusted CA, and a certificate name among the MX patterns (SNI: the MX host). */
export function postfixPolicy(policy: StsPolicy): string {
  return `secure match=${matchList(policy)} servername=hostname`;
}

// Direct delivery to the recipients' MX hosts (no RELAY_HOST): the validating resolver that makes
// DANE possible, the TLS level, per-destination overrides, MTA-STS; and what the domains relaybox
// serves publish for senders (TLS-RPT, DANE inbound).
import { isIP } from 'node:net';
import { z } from 'zod';
import { envDocs, pemFile, readText, take, text } from '../fields.ts';
import { parseAddress, parseDomain, splitList, type Parsed } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as upstream } from './upstream.ts';

/** dane: TLSA records under DNSSEC are enforced, opportunistic TLS elsewhere; encrypt: TLS required; may: TLS when offered. */
export const OUTBOUND_TLS_LEVELS = ['dane', 'encrypt', 'may'] as const;
/** TLS_POLICY levels: OUTBOUND_TLS's, plus verify (certificate chain and the MX name checked) and none. */
export const POLICY_LEVELS = ['dane', 'verify', 'encrypt', 'may', 'none'] as const;
export type PolicyLevel = (typeof POLICY_LEVELS)[number];

export interface TlsPolicyEntry {
  /** `example.com` (that domain), `.example.com` (its subdomains). */
  destination: string;
  level: PolicyLevel;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/** `destination=level`, e.g. `example.com=verify` or `.example.org=encrypt`. */
export function parseTlsPolicyEntry(entry: string): Parsed<TlsPolicyEntry> {
  const [raw = '', level = '', ...rest] = entry.split('=').map((part) => part.trim());
  if (rest.length > 0 || !level) return fail(`"${entry}": give destination=level, e.g. example.com=verify`);
  const found = POLICY_LEVELS.find((l) => l === level.toLowerCase());
  if (!found) return fail(`"${entry}": the level must be one of ${POLICY_LEVELS.join(', ')}`);
  const subdomains = raw.startsWith('.');
  const domain = parseDomain(subdomains ? raw.slice(1) : raw);
  if (!domain.ok) return fail(`"${entry}": ${domain.message}`);
  return ok({ destination: subdomains ? `.${domain.value}` : domain.value, level: found });
}

const choice = <T extends string>(values: readonly T[], doc: { description: string; default?: string }, emptyMeans: string) =>
  text({ group: 'Direct delivery', ...doc }).transform((raw, ctx) => {
    const value = raw.trim().toLowerCase();
    if (value === '') return undefined;
    const found = values.find((v) => v === value);
    if (!found) ctx.addIssue({ code: 'custom', message: `one of ${values.join(', ')}, or empty for ${emptyMeans}`, input: raw });
    return found;
  });

export const variables = {
  RESOLVER: z
    .enum(['unbound', 'system'], { error: 'unbound or system' })
    .default('unbound')
    .register(envDocs, {
      group: 'Direct delivery',
      default: 'unbound',
      description:
        "Without RELAY_HOST: `unbound` runs a DNSSEC-validating resolver (supervised, cache in memory) on RESOLVER_ADDRESS port 53 for Postfix's MX, TLSA and MTA-STS lookups; it asks DNS_SERVERS as forwarders when set, else the root servers. `system`: no resolver of relaybox's own; Postfix asks DNS_SERVERS (port 53) or the system's, and OUTBOUND_TLS=dane is then yours to vouch for (that resolver must validate and set the AD bit).",
    }),
  RESOLVER_ADDRESS: text({ group: 'Direct delivery', default: '127.0.0.153', description: 'Loopback IPv4 address the validating resolver listens on (port 53; glibc knows no other port). Change it only when two instances share a network namespace.' }).transform((raw, ctx) => {
    const value = raw.trim();
    if (isIP(value) !== 4 || !value.startsWith('127.')) ctx.addIssue({ code: 'custom', message: 'an IPv4 loopback address such as 127.0.0.153', input: raw });
    return value;
  }),
  DNSSEC_TRUST_ANCHOR_FILE: text({ group: 'Direct delivery', description: "DNSKEY or DS records (zone-file format) the resolver trusts as its anchor. Empty = the root zone's key (Debian's dns-root-data, /usr/share/dns/root.key). For a private DNSSEC tree or tests." }).transform((raw, ctx) => {
    const path = raw.trim();
    if (path === '') return undefined;
    const content = readText(path, ctx);
    if (content !== undefined && !/\s(DNSKEY|DS)\s/.test(content)) ctx.addIssue({ code: 'custom', message: 'holds no DNSKEY or DS record; give a zone-format trust anchor file', input: raw });
    // Kept as text: unbound reads its anchor after dropping to its own user, so it gets a copy it can read.
    return { path, records: content ?? '' };
  }),
  OUTBOUND_TLS: choice(OUTBOUND_TLS_LEVELS, {
    description:
      "TLS to the recipients' MX hosts (direct delivery only; the smarthost's is RELAY_TLS). `dane` (the default with RESOLVER=unbound): a destination whose MX hosts publish TLSA records under DNSSEC gets mail only over TLS with a certificate matching them, else the mail stays queued; other destinations get TLS when offered (MTA-STS policies on top, MTA_STS). `encrypt`: TLS required everywhere, certificates unchecked. `may` (the default with RESOLVER=system): TLS when offered.",
  }, 'the default'),
  TLS_POLICY: text({
    group: 'Direct delivery',
    list: true,
    description:
      'Per-destination TLS overrides for direct delivery: comma- or newline-separated `destination=level`; destination `example.com`, or `.example.com` for its subdomains; level `dane`, `verify` (the MX certificate must chain to a trusted CA and name the MX host or the domain), `encrypt`, `may` or `none`. Overrides OUTBOUND_TLS and MTA-STS for that destination.',
  }).transform((raw, ctx) => splitList(raw).map((entry) => take(parseTlsPolicyEntry(entry), ctx, entry))),
  MTA_STS: z
    .enum(['on', 'off'], { error: 'on or off' })
    .default('on')
    .register(envDocs, {
      group: 'Direct delivery',
      default: 'on',
      description:
        "`on`: recipient domains' MTA-STS policies (RFC 8461) are fetched over HTTPS (`mta-sts.<domain>`, no redirects, CA-verified), cached in memory for their max_age and applied on direct delivery: `enforce` means TLS with a certificate valid for an MX the policy names, else the mail stays queued; `testing` is logged (with the failure it would have caused) but not enforced. A destination with DANE (TLSA under DNSSEC) keeps DANE. `off`: not looked up.",
    }),
  OUTBOUND_TLS_CA_FILE: pemFile({ group: 'Direct delivery', description: "PEM CA(s) trusted in addition to the system's for MX certificates (TLS_POLICY verify, MTA-STS) and MTA-STS policy fetches. For a private PKI or tests." }, 'certificate'),
  MTA_STS_POLICY_MODE: z
    .enum(['testing', 'enforce', 'none', 'off'], { error: 'testing, enforce, none or off' })
    .default('testing')
    .register(envDocs, {
      group: 'Direct delivery',
      default: 'testing',
      description:
        "The mode of the MTA-STS policy `relaybox dns` prints for the domains relaybox serves (served at https://mta-sts.<domain>/.well-known/mta-sts.txt, naming MAIL_HOSTNAME as the MX). Start with `testing` and read the TLS reports; `enforce` once they are clean; `none` to withdraw a policy; `off`: no MTA-STS record printed or checked (you serve no policy).",
    }),
  TLS_RPT_ADDRESS: text({ group: 'Direct delivery', description: 'Where senders send TLS reports (RFC 8460) about the domains relaybox serves: `relaybox dns` prints the `_smtp._tls` record with it. Empty = postmaster@ the first domain.' }).transform((raw, ctx) =>
    raw.trim() === '' ? undefined : take(parseAddress(raw.trim()), ctx, raw),
  ),
  DANE_INBOUND: z
    .enum(['on', 'off'], { error: 'on or off' })
    .default('off')
    .register(envDocs, {
      group: 'Direct delivery',
      default: 'off',
      description: "`on`: `relaybox dns` prints TLSA records (3 1 1, the certificate's public key) for MAIL_HOSTNAME port 25, and `dns --check` verifies them. Publish them only in a DNSSEC-signed zone, and publish the next key's record before a key change.",
    }),
};

type Env = Values<typeof variables & Pick<typeof upstream, 'RELAY_HOST'>>;

export function check(env: Env, issue: Issue): void {
  if (env.RELAY_HOST && env.TLS_POLICY.length > 0) issue('TLS_POLICY', 'applies to direct delivery to MX hosts; with RELAY_HOST set every message goes to the smarthost (RELAY_TLS)');
  const seen = new Set<string>();
  for (const { destination } of env.TLS_POLICY) {
    if (seen.has(destination)) issue('TLS_POLICY', `${destination} is listed twice; give one level per destination`);
    seen.add(destination);
  }
}

export function toConfig(env: Env) {
  const direct = !env.RELAY_HOST;
  const anchor = env.DNSSEC_TRUST_ANCHOR_FILE;
  const resolver = env.RESOLVER === 'unbound' && direct ? { address: env.RESOLVER_ADDRESS, trustAnchor: anchor ? { file: anchor.path, records: anchor.records } : { file: ROOT_TRUST_ANCHOR } } : undefined;
  return {
    /** relaybox's own validating resolver, when it runs (direct delivery with RESOLVER=unbound). */
    resolver,
    outbound: {
      level: env.OUTBOUND_TLS ?? (env.RESOLVER === 'unbound' ? 'dane' : 'may'),
      policy: env.TLS_POLICY,
      mtaSts: env.MTA_STS === 'on' && direct,
      caFile: env.OUTBOUND_TLS_CA_FILE?.path,
    },
    inbound: { tlsRptAddress: env.TLS_RPT_ADDRESS, dane: env.DANE_INBOUND === 'on', stsMode: env.MTA_STS_POLICY_MODE },
  };
}

/** Debian's dns-root-data: the root zone's key. */
export const ROOT_TRUST_ANCHOR = '/usr/share/dns/root.key';


/** Settings that work but weaken direct delivery: logged at every start and by check-config. */
export function warnings(config: ReturnType<typeof toConfig> & { relay?: unknown; role: string }): string[] {
  if (config.relay || config.role === 'mailbox') return [];
  const found: string[] = [];
  if (config.outbound.level === 'may') found.push('OUTBOUND_TLS=may: direct delivery to MX hosts uses TLS only when offered, so anyone on the path can strip STARTTLS; use dane (RESOLVER=unbound) or encrypt');
  if (config.outbound.level === 'dane' && !config.resolver) found.push("OUTBOUND_TLS=dane with RESOLVER=system: DANE holds only if the system's or DNS_SERVERS' resolver validates DNSSEC and sets the AD bit");
  return found;
}

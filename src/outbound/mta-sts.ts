// MTA-STS for direct delivery: each recipient domain's policy, found through its `_mta-sts` TXT record,
// fetched over HTTPS (verified; no redirects), kept in memory for its max_age, and turned into a
// Postfix TLS policy. DANE wins where the domain has it: a TLSA-protected domain gets `dane`.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { Resolver } from 'node:dns/promises';
import { rootCertificates } from 'node:tls';
import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { askHeader, DNS_TYPES } from '../protocol/dns-probe.ts';
import type { SocketmapAnswer } from '../protocol/socketmap.ts';
import { parseStsPolicy, postfixPolicy, stsRecordId, type StsPolicy } from './policy.ts';

const MAX_POLICY_BYTES = 64 * 1024;
const FETCH_TIMEOUT_MS = 10_000;
const MAX_CACHED = 10_000;

interface Cached {
  id: string;
  policy: StsPolicy;
  expiresAt: number;
}

export interface MtaStsOptions {
  /** The validating resolver (its AD bit says whether DANE applies); unset: DANE is not checked. */
  validating?: { address: string; port: number };
  /** Servers for node:dns (`ip` or `[ip]:port`); empty: the system's. */
  servers: string[];
  /** A file of extra trusted CA(s) for the policy hosts (OUTBOUND_TLS_CA_FILE). */
  caFile?: string;
  log: Logger;
}

const NO_RECORD = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN']);
const isDomain = (key: string) => /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(key);

export class MtaSts {
  private readonly cache = new Map<string, Cached>();
  /** Lookups under way: Postfix asks for a domain once per delivery, several at a time. */
  private readonly pending = new Map<string, Promise<StsPolicy | undefined>>();
  private readonly dns = new Resolver({ timeout: 3000, tries: 2 });
  private readonly reported = new Set<string>();
  private readonly ca: string[];
  private readonly options: MtaStsOptions;

  constructor(options: MtaStsOptions) {
    this.options = options;
    if (options.servers.length > 0) this.dns.setServers(options.servers);
    this.ca = trustedCas(options.caFile);
  }

  /** The socketmap answer for one nexthop domain (Postfix also asks `.parent` forms and [host]:port: not found). */
  async lookup(domain: string): Promise<SocketmapAnswer> {
    const key = domain.toLowerCase();
    if (!isDomain(key)) return { notFound: true };
    let finding = this.pending.get(key);
    if (!finding) {
      finding = this.policyFor(key).finally(() => this.pending.delete(key));
      this.pending.set(key, finding);
    }
    const policy = await finding;
    if (!policy || policy.mode === 'none') return { notFound: true };
    if (await this.daneUsable(key)) {
      this.once(`dane ${key}`, () => this.options.log.info({ event: 'mta_sts_dane_precedence', domain: key }, `${key} has DANE (TLSA under DNSSEC): DANE applies, not its MTA-STS policy`));
      return { found: 'dane' };
    }
    if (policy.mode === 'testing') {
      this.once(`testing ${key} ${policy.mx.join(',')}`, () =>
        this.options.log.warn({ event: 'mta_sts_testing', domain: key, mx: policy.mx }, `${key} publishes an MTA-STS policy in testing mode (mx ${policy.mx.join(', ')}): reported, not enforced; its mail goes with the default TLS level`),
      );
      return { notFound: true };
    }
    return { found: postfixPolicy(policy) };
  }

  private once(key: string, report: () => void): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    report();
  }

  /** Caches a policy; past MAX_CACHED domains, the expired ones go first, then the oldest. */
  private remember(domain: string, entry: Cached): void {
    this.cache.delete(domain);
    this.cache.set(domain, entry);
    if (this.cache.size <= MAX_CACHED) return;
    const now = Date.now();
    for (const [name, cached] of this.cache) if (cached.expiresAt <= now) this.cache.delete(name);
    for (const name of this.cache.keys()) {
      if (this.cache.size <= MAX_CACHED) break;
      this.cache.delete(name);
    }
  }

  /** The policy in force for a domain: the cached one while its TXT id is unchanged, else fetched anew. */
  private async policyFor(domain: string): Promise<StsPolicy | undefined> {
    const cached = this.cache.get(domain);
    const live = cached && cached.expiresAt > Date.now() ? cached : undefined;
    let id: string | undefined;
    try {
      id = stsRecordId(await this.dns.resolveTxt(`_mta-sts.${domain}`));
    } catch (error) {
      if (!NO_RECORD.has((error as NodeJS.ErrnoException).code ?? '')) return live?.policy; // DNS trouble: what we know
    }
    if (id === undefined) return live?.policy; // RFC 8461 §5.1: a cached policy outlives its record
    if (live && live.id === id) return live.policy;
    try {
      const policy = await fetchStsPolicy(domain, { ca: this.ca, lookup: lookupWith(this.dns) });
      this.remember(domain, { id, policy, expiresAt: Date.now() + policy.maxAgeSeconds * 1000 });
      this.options.log.info({ event: 'mta_sts_policy', domain, mode: policy.mode, mx: policy.mx, maxAge: policy.maxAgeSeconds }, `MTA-STS policy of ${domain}: ${policy.mode} (mx ${policy.mx.join(', ')})`);
      return policy;
    } catch (error) {
      this.options.log.warn({ event: 'mta_sts_fetch_failed', domain, error: (error as Error).message }, `MTA-STS policy of ${domain} could not be fetched: ${(error as Error).message}`);
      return live?.policy;
    }
  }

  /** Whether Postfix will use DANE for the domain: its MX set validated, and a validated TLSA record for one MX. */
  private async daneUsable(domain: string): Promise<boolean> {
    const validating = this.options.validating;
    if (!validating) return false;
    try {
      const mx = await askHeader(validating.address, validating.port, domain, DNS_TYPES.MX);
      if (!mx.ad || mx.answers === 0) return false;
      for (const { exchange } of await this.dns.resolveMx(domain)) {
        const tlsa = await askHeader(validating.address, validating.port, `_25._tcp.${exchange}`, DNS_TYPES.TLSA);
        if (tlsa.rcode === 0 && tlsa.ad && tlsa.answers > 0) return true;
      }
    } catch {
      return false;
    }
    return false;
  }
}

/** The system's CAs plus those of OUTBOUND_TLS_CA_FILE (validated as PEM when the config was loaded). */
export function trustedCas(extraFile: string | undefined): string[] {
  return [...rootCertificates, ...(extraFile ? [readFileSync(extraFile, 'utf8')] : [])];
}

/** A host lookup for node:https through a given resolver (not getaddrinfo: DNS_SERVERS and the tests' zones). */
export function lookupWith(dns: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    const family = typeof options === 'object' && options.family === 6 ? 6 : 4;
    const resolve = family === 6 ? dns.resolve6(hostname) : dns.resolve4(hostname).catch(() => dns.resolve6(hostname));
    resolve.then(
      (addresses) => {
        const found = addresses[0]!;
        const foundFamily = found.includes(':') ? 6 : 4;
        if (typeof options === 'object' && options.all) (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, addresses.map((address) => ({ address, family: foundFamily })));
        else callback(null, found, foundFamily);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}

/** GET https://mta-sts.<domain>/.well-known/mta-sts.txt: 200, text/plain, at most 64 KiB, no redirects. */
export function fetchStsPolicy(domain: string, options: { ca: string[]; lookup: LookupFunction }): Promise<StsPolicy> {
  return new Promise((resolve, reject) => {
    const req = request({ host: `mta-sts.${domain}`, port: 443, path: '/.well-known/mta-sts.txt', method: 'GET', ca: options.ca, lookup: options.lookup, timeout: FETCH_TIMEOUT_MS, headers: { 'user-agent': 'relaybox' } }, (response) => {
      if (response.statusCode !== 200) return void (response.resume(), reject(new Error(`HTTP ${response.statusCode} (redirects are not followed)`)));
      if (!/^text\/plain\b/i.test(response.headers['content-type'] ?? '')) return void (response.resume(), reject(new Error(`content type ${response.headers['content-type'] ?? 'missing'}, not text/plain`)));
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_POLICY_BYTES) return void req.destroy(new Error('the policy is larger than 64 KiB'));
        chunks.push(chunk);
      });
      response.on('end', () => {
        const parsed = parseStsPolicy(Buffer.concat(chunks).toString('utf8'));
        if (parsed.ok) resolve(parsed.policy);
        else reject(new Error(`invalid policy: ${parsed.error}`));
      });
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${FETCH_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

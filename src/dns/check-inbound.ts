// `dns --check` for the inbound TLS records: the MTA-STS record and the policy actually served over
// HTTPS (it must name MAIL_HOSTNAME, or senders enforcing it refuse relaybox), and the TLSA record
// of the certificate in service.
import type { Resolver } from 'node:dns/promises';
import type { Config } from '../config/schema.ts';
import { fetchStsPolicy, lookupWith, trustedCas } from '../outbound/mta-sts.ts';
import { stsRecordId } from '../outbound/policy.ts';
import type { CheckLine } from './types.ts';
import { stsPolicyUrl } from './inbound.ts';
import type { DnsRecord } from './types.ts';

const notFound = (error: unknown) => ['ENOTFOUND', 'ENODATA'].includes((error as NodeJS.ErrnoException).code ?? '');

/** Whether an MX pattern of a policy (`mx.example.com`, `*.example.com`) covers a host. */
function covers(pattern: string, host: string): boolean {
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && !host.slice(0, -pattern.length + 1).includes('.') : pattern === host;
}

export async function checkSts(dns: Resolver, config: Config, record: DnsRecord): Promise<CheckLine> {
  const domain = record.name.replace(/^_mta-sts\./, '');
  let txt: string[][];
  try {
    txt = await dns.resolveTxt(record.name);
  } catch (error) {
    if (notFound(error)) return { status: 'missing', record, detail: 'no v=STSv1 record' };
    throw error;
  }
  const id = stsRecordId(txt);
  if (id === undefined) return { status: 'error', record, detail: 'no single v=STSv1 record with an id= (senders see no policy)' };
  let policy;
  try {
    policy = await fetchStsPolicy(domain, { ca: trustedCas(config.outbound.caFile), lookup: lookupWith(dns) });
  } catch (error) {
    return { status: 'error', record, detail: `the record is published but ${stsPolicyUrl(domain)} cannot be fetched: ${(error as Error).message}` };
  }
  if (policy.mode !== 'none' && !policy.mx.some((pattern) => covers(pattern, config.hostname))) {
    return { status: 'error', record, detail: `the served policy's mx (${policy.mx.join(', ')}) does not name ${config.hostname}: senders enforcing it will not deliver here` };
  }
  if (policy.mode !== config.inbound.stsMode) return { status: 'differs', record, detail: `the served policy is in ${policy.mode} mode, MTA_STS_POLICY_MODE is ${config.inbound.stsMode}` };
  const expected = /id=(\w+)/.exec(record.value)?.[1];
  return { status: 'ok', record, detail: `id=${id}${id === expected ? '' : ' (not the id relaybox prints; change it whenever the policy changes)'}, ${stsPolicyUrl(domain)} serves mode ${policy.mode}, mx ${policy.mx.join(', ')}` };
}

export async function checkTlsa(dns: Resolver, record: DnsRecord): Promise<CheckLine> {
  let found: Array<{ certUsage: number; selector: number; match: number; data: ArrayBuffer }>;
  try {
    found = await dns.resolveTlsa(record.name);
  } catch (error) {
    if (notFound(error)) return { status: 'missing', record, detail: 'no TLSA record' };
    throw error;
  }
  const published = found.map((r) => `${r.certUsage} ${r.selector} ${r.match} ${Buffer.from(r.data).toString('hex')}`);
  return published.includes(record.value)
    ? { status: 'ok', record, detail: 'a published record matches the certificate in service (it counts only in a DNSSEC-signed zone)' }
    : { status: 'error', record, detail: `no published record matches the certificate in service (published: ${published.join('; ')}): DANE senders will not deliver` };
}

// `relaybox dns --check`: looks each record up and says, line by line, what is there, what is
// missing and what differs from what relaybox would publish. A missing record, a wrong MX or a DKIM
// key that is not the one in use is an error; an SPF or DMARC policy of your own is only noted.
import { Resolver } from 'node:dns/promises';
import type { Config } from '../config/schema.ts';
import type { CheckLine, DnsRecord } from './types.ts';
import { checkSts, checkTlsa } from './check-inbound.ts';

export type { CheckLine } from './types.ts';

function resolver(config: Config): Resolver {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  if (config.dnsServers.length > 0) resolver.setServers(config.dnsServers.map(({ address, port }) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`)));
  return resolver;
}

const notFound = (error: unknown) => ['ENOTFOUND', 'ENODATA'].includes((error as NodeJS.ErrnoException).code ?? '');

async function txt(dns: Resolver, name: string): Promise<string[] | undefined> {
  try {
    return (await dns.resolveTxt(name)).map((chunks) => chunks.join(''));
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
}

const tag = (value: string, name: string) => new RegExp(`(?:^|;)\\s*${name}=([^;]*)`).exec(value)?.[1]?.replace(/\s+/g, '');

async function checkOne(dns: Resolver, record: DnsRecord, config: Config): Promise<CheckLine> {
  if (record.kind === 'mta-sts') return checkSts(dns, config, record);
  if (record.kind === 'tlsa') return checkTlsa(dns, record);
  if (record.kind === 'mx') {
    let exchanges: string[];
    try {
      exchanges = (await dns.resolveMx(record.name)).map((mx) => mx.exchange.toLowerCase().replace(/\.$/, ''));
    } catch (error) {
      if (notFound(error)) return { status: 'missing', record, detail: 'no MX record' };
      throw error;
    }
    const host = record.value.split(' ')[1]!.replace(/\.$/, '');
    return exchanges.includes(host) ? { status: 'ok', record, detail: `MX ${host}` } : { status: 'error', record, detail: `MX points to ${exchanges.join(', ')}, not to ${host}` };
  }
  const found = await txt(dns, record.name);
  const prefix = ({ spf: 'v=spf1', dkim: 'v=DKIM1', dmarc: 'v=DMARC1', 'tls-rpt': 'v=TLSRPTv1' } as Record<string, string>)[record.kind] ?? '';
  const mine = (found ?? []).filter((value) => value.replace(/^"|"$/g, '').startsWith(prefix));
  if (mine.length === 0) return { status: 'missing', record, detail: `no ${prefix} record` };
  if (mine.length > 1) return { status: 'error', record, detail: `${mine.length} ${prefix} records; receivers ignore them all when there is more than one` };
  const published = mine[0]!;
  if (record.kind === 'dkim') {
    return tag(published, 'p') === record.publicKey ? { status: 'ok', record, detail: 'the published key is the key in use' } : { status: 'error', record, detail: 'the published key is not the key relaybox signs with: receivers will fail every signature' };
  }
  const same = published.replace(/\s+/g, ' ').trim() === record.value;
  return same ? { status: 'ok', record, detail: published } : { status: 'differs', record, detail: `published ${JSON.stringify(published)}` };
}

export async function checkRecords(config: Config, records: DnsRecord[]): Promise<CheckLine[]> {
  const dns = resolver(config);
  return Promise.all(
    records.map((record) => checkOne(dns, record, config).catch((error: NodeJS.ErrnoException) => ({ status: 'error' as const, record, detail: `lookup failed: ${error.code ?? error.message}` }))),
  );
}

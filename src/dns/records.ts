// The DNS records a domain needs for relaybox's mail to be trusted where it lands: MX (for the
// domains it receives), SPF, the DKIM key of every selector, and DMARC. Pure: config and keys in.
import { createPublicKey } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { inboundRecords, stsPolicyComment, tlsaRecord } from './inbound.ts';
import type { DnsRecord } from './types.ts';

export type { DnsRecord } from './types.ts';

export interface SigningKey {
  domain: string;
  selector: string;
  pem: string;
}

/** The base64 SubjectPublicKeyInfo of a private key, as DKIM's p= tag carries it. */
export function publicKeyOf(pem: string): string {
  return createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
}

/**
 * Every domain relaybox receives or signs for, with its records; the receiving ones with MTA-STS and
 * TLS-RPT (dns/inbound.ts); with `certificatePem` (DANE_INBOUND) MAIL_HOSTNAME's TLSA record.
 */
export function recordsFor(config: Config, keys: SigningKey[], certificatePem?: string): Map<string, DnsRecord[]> {
  const domains = [...new Set([...config.domains, ...keys.map((k) => k.domain)])];
  const byDomain = new Map(
    domains.map((domain) => {
      const receives = config.domains.includes(domain);
      const records: DnsRecord[] = [];
      if (receives) records.push({ name: domain, type: 'MX', value: `10 ${config.hostname}.`, kind: 'mx' });
      // Mail leaves from MAIL_HOSTNAME (or a smarthost, whose own SPF include must be added).
      records.push({ name: domain, type: 'TXT', value: `v=spf1 ${receives ? 'mx ' : ''}a:${config.hostname} ~all`, kind: 'spf' });
      for (const key of keys.filter((k) => k.domain === domain)) {
        const publicKey = publicKeyOf(key.pem);
        records.push({ name: `${key.selector}._domainkey.${domain}`, type: 'TXT', value: `v=DKIM1; k=rsa; p=${publicKey}`, kind: 'dkim', publicKey });
      }
      // A starting policy: report, do not yet ask receivers to refuse; tighten to quarantine/reject later.
      records.push({ name: `_dmarc.${domain}`, type: 'TXT', value: `v=DMARC1; p=none; adkim=r; aspf=r${receives ? `; rua=mailto:postmaster@${domain}` : ''}`, kind: 'dmarc' });
      if (receives) records.push(...inboundRecords(config, domain));
      return [domain, records];
    }),
  );
  if (certificatePem && config.inbound?.dane) byDomain.set(config.hostname, [tlsaRecord(config, certificatePem)]);
  return byDomain;
}

/** A TXT value in zone-file syntax: quoted strings of at most 255 characters. */
export function quoted(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.join(' ');
}

/** The records as zone-file lines, a comment line per domain (and where its MTA-STS policy is served). */
export function zoneText(records: Map<string, DnsRecord[]>, relayed: boolean, config?: Config): string {
  const lines: string[] = [];
  for (const [domain, list] of records) {
    const tlsa = list.every((r) => r.kind === 'tlsa');
    lines.push(tlsa ? `; ${domain} (DANE_INBOUND: publish only in a DNSSEC-signed zone; add the next key's record before a key change)` : `; ${domain}${relayed ? ' (mail leaves through RELAY_HOST: add its SPF include, e.g. include:_spf.provider.example, before ~all)' : ''}`);
    const width = Math.max(...list.map((r) => r.name.length)) + 2;
    for (const record of list) lines.push(`${`${record.name}.`.padEnd(width)} 3600 IN ${record.type.padEnd(3)} ${record.type === 'TXT' ? quoted(record.value) : record.value}`);
    if (config && list.some((r) => r.kind === 'mta-sts')) lines.push(...stsPolicyComment(config, domain));
    lines.push('');
  }
  return lines.join('\n');
}

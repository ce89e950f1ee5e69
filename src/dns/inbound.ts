// What the domains relaybox serves publish so that senders cannot be downgraded either: the
// MTA-STS TXT record and its policy file (naming MAIL_HOSTNAME), the TLS-RPT record, and with
// DANE_INBOUND the TLSA record of the certificate port 25 serves. Pure: config and certificate in.
import { createHash, X509Certificate } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { DnsRecord } from './types.ts';

const MAX_AGE_SECONDS = 604_800; // one week, as RFC 8461's examples and the big senders use

/** The policy file to serve at https://mta-sts.<domain>/.well-known/mta-sts.txt. */
export function stsPolicyText(config: Config): string {
  const mode = config.inbound.stsMode;
  return `version: STSv1\nmode: ${mode}\n${mode === 'none' ? '' : `mx: ${config.hostname}\n`}max_age: ${mode === 'none' ? 86_400 : MAX_AGE_SECONDS}\n`;
}

/** The TXT record's id: changes whenever the policy does, so senders fetch it again. */
export function stsId(policy: string): string {
  return createHash('sha256').update(policy).digest('hex').slice(0, 20);
}

export function stsPolicyUrl(domain: string): string {
  return `https://mta-sts.${domain}/.well-known/mta-sts.txt`;
}

/** `3 1 1 <sha256 of the public key>`: DANE-EE, the key, so a renewal with the same key keeps it valid. */
export function tlsaValue(certificatePem: string): string {
  const spki = new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
  return `3 1 1 ${createHash('sha256').update(spki).digest('hex')}`;
}

/** The MTA-STS and TLS-RPT records of one receiving domain. */
export function inboundRecords(config: Config, domain: string): DnsRecord[] {
  const reports = config.inbound.tlsRptAddress ?? `postmaster@${config.domains[0] ?? domain}`;
  return [
    ...(config.inbound.stsMode === 'off' ? [] : [{ name: `_mta-sts.${domain}`, type: 'TXT' as const, value: `v=STSv1; id=${stsId(stsPolicyText(config))}`, kind: 'mta-sts' as const }]),
    { name: `_smtp._tls.${domain}`, type: 'TXT', value: `v=TLSRPTv1; rua=mailto:${reports}`, kind: 'tls-rpt' },
  ];
}

/** DANE_INBOUND: the TLSA record for MAIL_HOSTNAME port 25. */
export function tlsaRecord(config: Config, certificatePem: string): DnsRecord {
  return { name: `_25._tcp.${config.hostname}`, type: 'TLSA', value: tlsaValue(certificatePem), kind: 'tlsa' };
}

/** Zone-file comments saying where the policy is served and what it holds. */
export function stsPolicyComment(config: Config, domain: string): string[] {
  return [
    `; MTA-STS: serve ${stsPolicyUrl(domain)} over HTTPS (a certificate valid for mta-sts.${domain}, Content-Type text/plain)`,
    `; with exactly these lines (the _mta-sts id above changes with them):`,
    ...stsPolicyText(config).trimEnd().split('\n').map((line) => `;   ${line}`),
  ];
}

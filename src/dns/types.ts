// The records `relaybox dns` prints and the verdicts `dns --check` gives, shared by its modules.

export interface DnsRecord {
  name: string;
  type: 'MX' | 'TXT' | 'TLSA';
  value: string;
  /** What the record is for, and for DKIM which key it must carry. */
  kind: 'mx' | 'spf' | 'dkim' | 'dmarc' | 'mta-sts' | 'tls-rpt' | 'tlsa';
  /** DKIM: the public key (base64 DER) that must be published. */
  publicKey?: string;
}

export interface CheckLine {
  status: 'ok' | 'missing' | 'differs' | 'error';
  record: DnsRecord;
  detail: string;
}

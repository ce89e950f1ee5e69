// The DNS records to publish for every domain (MX, SPF, DKIM of every listed selector, DMARC) with
// what DNS answers for each: `relaybox dns --check` as data, for the API and the console.
import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../config/schema.ts';
import { checkRecords } from '../dns/check.ts';
import { recordsFor } from '../dns/records.ts';
import { publishedDkimKeys } from '../host/dkim-keys.ts';
import type { StatePaths } from '../render/paths.ts';

export async function dnsRecords(config: Config, paths: StatePaths) {
  const keys = publishedDkimKeys(config, paths).filter((key) => existsSync(key.path));
  const records = [...recordsFor(config, keys.map((key) => ({ ...key, pem: readFileSync(key.path, 'utf8') }))).values()].flat();
  const checked = await checkRecords(config, records);
  return checked.map(({ record, status, detail }) => ({ name: record.name, type: record.type, kind: record.kind, value: record.value, status, detail }));
}

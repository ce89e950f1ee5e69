// `relaybox dns [--check]` and `relaybox dkim-keygen`: the records to publish, checked against DNS,
// and keys made once for a Kubernetes or Docker secret.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { keyFileName } from '../config/areas/dkim.ts';
import type { Config } from '../config/schema.ts';
import { ensureDkimKeys, newDkimKey, plannedDkimKeys, publishedDkimKeys } from '../host/dkim-keys.ts';
import { statePaths } from '../render/paths.ts';
import { checkRecords } from './check.ts';
import { quoted, recordsFor, zoneText } from './records.ts';

/** Prints the records; with `check`, looks them up and returns the exit code (1 when something is wrong). */
export async function dnsCommand(config: Config, check: boolean, log: Logger, out: (line: string) => void): Promise<number> {
  const paths = statePaths(config.stateDir);
  // The keys a start would sign with; missing generated ones are made now, so they can be published first.
  // A DKIM rotation's next key and the retiring ones are listed too (host/dkim-rotation.ts).
  const keys = existsSync(config.stateDir) || config.dkim ? (await ensureDkimKeys(config, paths, log), publishedDkimKeys(config, paths)) : plannedDkimKeys(config, paths);
  const records = recordsFor(config, keys.map((key) => ({ ...key, pem: readFileSync(key.path, 'utf8') })), servedCertificate(config, paths));
  if (!check) {
    if (config.inbound.dane && !servedCertificate(config, paths)) out('; DANE_INBOUND: no certificate yet (TLS_CERT_FILE unset and relaybox not started once): no TLSA record to print\n');
    out(zoneText(records, config.relay !== undefined, config));
    return 0;
  }
  const lines = await checkRecords(config, [...records.values()].flat());
  for (const line of lines) {
    const shown = line.status === 'missing' ? `${line.detail}; publish: ${line.record.type} ${line.record.type === 'TXT' ? quoted(line.record.value) : line.record.value}` : line.detail;
    out(`${line.status.toUpperCase().padEnd(7)} ${line.record.name} ${line.record.type} (${line.record.kind}): ${shown}`);
  }
  return lines.some((line) => line.status === 'missing' || line.status === 'error') ? 1 : 0;
}

/** DANE_INBOUND: the certificate port 25 serves (TLS_CERT_FILE, or the one generated at the first start). */
function servedCertificate(config: Config, paths: ReturnType<typeof statePaths>): string | undefined {
  if (!config.inbound.dane) return undefined;
  const file = config.tls?.certFile ?? paths.generatedCert;
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** Writes `<domain>.<selector>.key` for each domain into `dir` (never over an existing key) and prints its record. */
export async function dkimKeygenCommand(domains: string[], selector: string, dir: string, bits: number, out: (line: string) => void): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const domain of domains) {
    const file = `${dir}/${keyFileName(domain, selector)}`;
    if (existsSync(file)) throw new Error(`${file} exists; a key is made once (delete it to replace it, then publish the new record)`);
    const pem = await newDkimKey(bits);
    writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
    const [record] = recordsFor({ domains: [], hostname: domain } as unknown as Config, [{ domain, selector, pem }]).get(domain)!.filter((r) => r.kind === 'dkim');
    out(`${file}\n${record!.name}. 3600 IN TXT ${quoted(record!.value)}\n`);
  }
}

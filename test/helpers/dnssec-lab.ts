// A DNSSEC lab on loopback: Knot DNS serving zones from zone files, the signed ones signed with a
// fresh key by ldns-signzone. `trustAnchor` is that key (DNSKEY, zone format) for the resolver under
// test (DNSSEC_TRUST_ANCHOR_FILE); names outside the signed zones have no anchor, so they are insecure.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort, waitFor } from './wait.ts';

export interface Zone {
  origin: string;
  /** Zone-file lines relative to the origin, e.g. `mx A 127.0.0.201`. SOA and NS are added. */
  records: string[];
  signed: boolean;
  /** After signing: each [from, to] replaced in the signed zone, so those answers fail validation (bogus). */
  forge?: Array<[string, string]>;
}

/** `3 1 1 <sha256 of the public key>`: a DANE-EE TLSA record's data for a certificate file. */
export function tlsaFor(certFile: string): string {
  const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return `3 1 1 ${createHash('sha256').update(spki).digest('hex')}`;
}

export class DnssecLab {
  readonly dir: string;
  readonly host = '127.0.0.1';
  port = 0;
  /** The signed zones' keys, for DNSSEC_TRUST_ANCHOR_FILE. */
  readonly trustAnchor: string;
  private knot: ChildProcess | undefined;
  readonly output: string[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.trustAnchor = `${dir}/trust-anchor.key`;
  }

  /** `127.0.0.1:PORT`, for DNS_SERVERS. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  static async start(zones: Zone[]): Promise<DnssecLab> {
    const lab = new DnssecLab(mkdtempSync('/tmp/rbdns-'));
    const anchors: string[] = [];
    for (const zone of zones) anchors.push(...lab.writeZone(zone));
    writeFileSync(lab.trustAnchor, anchors.join('\n') + '\n', { mode: 0o644 });
    lab.port = await freePort();
    writeFileSync(`${lab.dir}/knot.conf`, lab.knotConf(zones));
    lab.knot = spawn('knotd', ['-c', `${lab.dir}/knot.conf`], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [lab.knot.stdout!, lab.knot.stderr!]) stream.on('data', (chunk: Buffer) => lab.output.push(chunk.toString()));
    await waitFor('knotd to load its zones', 10_000, () => zones.every((zone) => lab.output.join('').includes(`[${zone.origin}.] loaded`)) || undefined);
    return lab;
  }

  /** Writes the zone (signed when asked); returns its trust anchor lines. */
  private writeZone(zone: Zone): string[] {
    const file = `${this.dir}/${zone.origin}.zone`;
    const lines = [`$ORIGIN ${zone.origin}.`, '$TTL 30', '@ SOA ns hostmaster 1 3600 600 86400 30', '@ NS ns', 'ns A 127.0.0.1', ...zone.records];
    writeFileSync(file, lines.join('\n') + '\n');
    if (!zone.signed) return [];
    const key = execFileSync('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', zone.origin], { cwd: this.dir, encoding: 'utf8' }).trim();
    // Valid from an hour ago to a year ahead: clock skew cannot make the signatures bogus.
    const now = Math.floor(Date.now() / 1000);
    execFileSync('ldns-signzone', ['-i', String(now - 3600), '-e', String(now + 365 * 86400), '-f', `${file}.signed`, file, `${this.dir}/${key}`], { cwd: this.dir });
    if (zone.forge) {
      let signed = readFileSync(`${file}.signed`, 'utf8');
      for (const [from, to] of zone.forge) {
        if (!signed.includes(from)) throw new Error(`cannot forge ${from}: not in the signed zone`);
        signed = signed.replace(from, to);
      }
      writeFileSync(`${file}.signed`, signed);
    }
    return [readFileSync(`${this.dir}/${key}.key`, 'utf8').replace(/;.*$/gm, '').trim()];
  }

  private knotConf(zones: Zone[]): string {
    return [
      'server:',
      `  listen: ${this.host}@${this.port}`,
      `  rundir: ${this.dir}`,
      'database:',
      `  storage: ${this.dir}`,
      'template:',
      '  - id: default',
      `    storage: ${this.dir}`,
      '    zonefile-sync: -1',
      '    zonefile-load: whole',
      '    journal-content: none',
      'zone:',
      ...zones.flatMap((zone) => [`  - domain: ${zone.origin}`, `    file: ${this.dir}/${zone.origin}.zone${zone.signed ? '.signed' : ''}`]),
      'log:',
      '  - target: stderr',
      '    any: info',
      '',
    ].join('\n');
  }

  async stop(): Promise<void> {
    const knot = this.knot;
    if (knot && knot.exitCode === null) {
      const exited = new Promise((resolve) => knot.once('exit', resolve));
      knot.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Files in the lab (for debugging a failed run). */
  files(): string[] {
    return readdirSync(this.dir);
  }
}

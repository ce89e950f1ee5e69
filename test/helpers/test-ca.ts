// A throwaway certificate authority made with openssl, for upstreams the relay must (or must not) trust.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';

export interface KeyPair {
  cert: string;
  key: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** `DNS:name` for a host name, `IP:address` for an address. */
const san = (names: string[]) => names.map((name) => (/^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',');

export class TestCa {
  readonly dir: string;
  readonly cert: string;
  private readonly key: string;
  private serial = 1;

  constructor(name = 'relaybox test CA') {
    this.dir = mkdtempSync('/tmp/rbca-');
    this.cert = `${this.dir}/ca.pem`;
    this.key = `${this.dir}/ca.key`;
    openssl(['req', '-x509', ...EC_KEY, '-keyout', this.key, '-out', this.cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }

  /** A server certificate signed by this CA for the given names (host names or IP addresses). */
  issue(...names: string[]): KeyPair {
    const base = `${this.dir}/leaf-${this.serial++}`;
    writeFileSync(`${base}.ext`, `subjectAltName=${san(names)}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    openssl(['req', ...EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`]);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', this.cert, '-CAkey', this.key, '-set_serial', String(this.serial * 1000 + Date.now() % 1000), '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.pem`]);
    return { cert: `${base}.pem`, key: `${base}.key` };
  }

  /** A client certificate signed by this CA whose subject CN is `commonName` (an account's address). */
  client(commonName: string): KeyPair {
    const base = `${this.dir}/client-${this.serial++}`;
    writeFileSync(`${base}.ext`, 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
    openssl(['req', ...EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${commonName}`]);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', this.cert, '-CAkey', this.key, '-set_serial', String(this.serial * 1000 + Date.now() % 1000), '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.pem`]);
    return { cert: `${base}.pem`, key: `${base}.key` };
  }

  /** A self-signed certificate for the given names: right names, nobody vouches for it. */
  selfSigned(...names: string[]): KeyPair {
    const base = `${this.dir}/self-${this.serial++}`;
    openssl(['req', '-x509', ...EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', '2', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san(names)}`]);
    return { cert: `${base}.pem`, key: `${base}.key` };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

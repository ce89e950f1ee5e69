// The DKIM keys OpenDKIM signs with, all kept in STATE_DIR/dkim and owned by OpenDKIM's user:
// copied from DKIM_KEY_DIR (checked by the schema) at every start and reload, or generated once per
// domain and selector (RSA 2048) and kept, like the generated TLS certificate.
import { generateKeyPair } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { keyFileName, keyProblem } from '../config/areas/dkim.ts';
import type { Config } from '../config/schema.ts';
import type { StatePaths } from '../render/paths.ts';
import type { DkimKey } from '../render/types.ts';
import { ensureDir } from './directories.ts';
import { writeDaemonFile } from './files.ts';
import { userIds } from './accounts.ts';
import { readRotation } from './dkim-rotation.ts';

const generate = promisify(generateKeyPair);
const OWNER = 'opendkim';

/** Every key the configuration signs with, at its place in STATE_DIR (whether or not it exists yet). */
export function plannedDkimKeys(config: Config, paths: StatePaths): DkimKey[] {
  // A rotation (operations/dkim.ts) decides a generated key's selector; DKIM_KEY_DIR's are never rotated.
  const rotation = config.dkim && !config.dkim.keyDir ? readRotation(paths) : {};
  return (config.dkim?.signing ?? []).flatMap(({ domain, selectors }) => (rotation[domain]?.signing ?? selectors).map((selector) => dkimKeyAt(paths, domain, selector)));
}

export function dkimKeyAt(paths: StatePaths, domain: string, selector: string): DkimKey {
  return { domain, selector, path: `${paths.dkimKeys}/${keyFileName(domain, selector)}` };
}

/** Every key whose record should be in DNS: those that sign, a rotation's next one and the retiring ones. */
export function publishedDkimKeys(config: Config, paths: StatePaths): DkimKey[] {
  const rotation = config.dkim && !config.dkim.keyDir ? readRotation(paths) : {};
  const extra = Object.entries(rotation).flatMap(([domain, r]) => [...(r.pending ? [r.pending.selector] : []), ...(r.retiring?.selectors ?? [])].map((selector) => dkimKeyAt(paths, domain, selector)));
  return [...plannedDkimKeys(config, paths), ...extra.filter((key) => existsSync(key.path))];
}

/** A new RSA key as PEM (PKCS#8). */
export async function newDkimKey(bits = 2048): Promise<string> {
  const { privateKey } = await generate('rsa', { modulusLength: bits, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return privateKey;
}

/** The planned keys in place: copied from DKIM_KEY_DIR, or generated when missing. */
export async function ensureDkimKeys(config: Config, paths: StatePaths, log: Logger): Promise<DkimKey[]> {
  const keys = plannedDkimKeys(config, paths);
  if (keys.length === 0) return keys;
  const owner = userIds(OWNER);
  if (!owner) throw new Error(`the system user ${OWNER} is missing: is OpenDKIM installed?`);
  ensureDir(paths.dkimKeys, 0o700, owner);
  const keyDir = config.dkim?.keyDir;
  for (const key of keys) {
    const write = (pem: string) => writeDaemonFile({ path: key.path, content: pem, mode: 0o600, owner: OWNER });
    if (keyDir) {
      write(readFileSync(`${keyDir}/${keyFileName(key.domain, key.selector)}`, 'utf8'));
    } else if (!existsSync(key.path)) {
      write(await newDkimKey());
      log.warn({ event: 'dkim_key_generated', domain: key.domain, selector: key.selector }, `generated the DKIM key for ${key.domain} (selector ${key.selector}): publish its record (relaybox dns) or receivers will not trust the signatures`);
    } else {
      const problem = keyProblem(readFileSync(key.path, 'utf8'));
      if (problem) throw new Error(`the DKIM key ${key.path} ${problem}; move it away to have a new one generated (and publish the new record), or fix it`);
    }
  }
  return keys;
}

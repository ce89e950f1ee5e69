// DKIM signing of outgoing mail: which domains, which selectors, where the keys are.
import { createPrivateKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { envDocs, take, text } from '../fields.ts';
import { parseDomain, parseSelector, splitList } from '../values.ts';
import type { Issue, Values } from './area.ts';
import type { variables as identity } from './identity.ts';

export const DEFAULT_SELECTOR = 'relaybox';

/** A key file in DKIM_KEY_DIR: `<domain>.<selector>.key`. */
export const keyFileName = (domain: string, selector: string) => `${domain}.${selector}.key`;

export const variables = {
  DKIM_SIGNING: z
    .enum(['on', 'off'], { error: 'on or off' })
    .default('on')
    .register(envDocs, { group: 'DKIM', default: 'on', description: '`on`: every message from an authenticated user or from TRUSTED_NETWORKS whose From: domain is in DKIM_DOMAINS is signed by OpenDKIM; if the signer is down or a key is unusable the sender gets 451 (never unsigned mail). `off`: no signing.' }),
  DKIM_DOMAINS: text({ group: 'DKIM', description: 'Comma-separated domains whose mail is signed. Empty = MAIL_DOMAINS.', list: true }).transform((raw, ctx) => [...new Set(splitList(raw).map((item) => take(parseDomain(item), ctx, item)))]),
  DKIM_SELECTORS: text({
    group: 'DKIM',
    description: `Comma-separated selectors; every one signs (rotation: add the new selector beside the old, publish it, then drop the old). Empty = \`${DEFAULT_SELECTOR}\`, or with DKIM_KEY_DIR every selector that has a key file there (a new file is picked up without a restart).`,
    list: true,
  }).transform((raw, ctx) => [...new Set(splitList(raw).map((item) => take(parseSelector(item), ctx, item)))]),
  DKIM_KEY_DIR: text({
    group: 'DKIM',
    description: 'Directory of PEM RSA private keys named `<domain>.<selector>.key` (a Docker or Kubernetes secret; `relaybox dkim-keygen` makes them). Empty = keys are generated (RSA 2048) into STATE_DIR/dkim on the first start and kept. Watched: changed or added keys are reloaded.',
    watched: 'directory',
  }).transform((raw, ctx) => {
    const dir = raw.trim();
    if (dir === '') return undefined;
    if (!isAbsolute(dir) || !existsSync(dir) || !statSync(dir).isDirectory()) {
      ctx.addIssue({ code: 'custom', message: 'the absolute path of a readable directory of key files', input: raw });
      return z.NEVER;
    }
    return dir;
  }),
};

type Env = Values<typeof variables & typeof identity>;

/** Selectors that have a key file for `domain` in `dir`. */
function selectorsIn(dir: string, domain: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith(`${domain}.`) && name.endsWith('.key'))
    .map((name) => name.slice(domain.length + 1, -'.key'.length))
    .filter((selector) => parseSelector(selector).ok);
}

/** The signing plan: for each domain, the selectors that sign it. */
function plan(env: Env): Array<{ domain: string; selectors: string[] }> {
  if (env.DKIM_SIGNING === 'off') return [];
  const domains = env.DKIM_DOMAINS.length > 0 ? env.DKIM_DOMAINS : env.MAIL_DOMAINS;
  return domains.map((domain) => ({
    domain,
    selectors: env.DKIM_SELECTORS.length > 0 ? env.DKIM_SELECTORS : env.DKIM_KEY_DIR ? selectorsIn(env.DKIM_KEY_DIR, domain) : [DEFAULT_SELECTOR],
  }));
}

/** Why a PEM key cannot sign, or undefined when it can (OpenDKIM in Debian 12 signs rsa-sha256 only). */
export function keyProblem(pem: string): string | undefined {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'rsa') return `is a ${key.asymmetricKeyType} key; OpenDKIM here signs with RSA keys only`;
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits < 1024 ? `is an RSA key of ${bits} bits; use at least 1024 (2048 recommended)` : undefined;
  } catch {
    return 'is not a PEM private key';
  }
}

export function check(env: Env, issue: Issue): void {
  const dir = env.DKIM_KEY_DIR;
  for (const { domain, selectors } of plan(env)) {
    if (selectors.length === 0) issue('DKIM_KEY_DIR', `no key file for ${domain}: expected ${keyFileName(domain, '<selector>')} in ${dir}`);
    if (!dir) continue;
    for (const selector of selectors) {
      const file = `${dir}/${keyFileName(domain, selector)}`;
      let pem: string;
      try {
        pem = readFileSync(file, 'utf8');
      } catch (error) {
        issue('DKIM_KEY_DIR', `${file}: cannot read the key for ${domain} selector ${selector} (${(error as NodeJS.ErrnoException).code}); make one with relaybox dkim-keygen`);
        continue;
      }
      const problem = keyProblem(pem);
      if (problem) issue('DKIM_KEY_DIR', `${file} ${problem}`);
    }
  }
}

export function toConfig(env: Env) {
  const signing = plan(env);
  return { dkim: signing.length > 0 ? { signing, keyDir: env.DKIM_KEY_DIR } : undefined };
}

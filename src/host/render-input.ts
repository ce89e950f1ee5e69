// What the renderers get, resolved on this host. One function for `run` (which creates what is
// missing: the mailbox user, a self-signed certificate, the first-run account) and for
// `check-config --render` (which creates nothing and shows what a start would use).
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { statePaths } from '../render/paths.ts';
import type { AuthPolicyEndpoint, RenderInput } from '../render/types.ts';
import { ensureMailboxUser, MAILBOX_USER, userIds } from './accounts.ts';
import { ensureDkimKeys, plannedDkimKeys } from './dkim-keys.ts';
import { firstRunUsers, storedFirstRunUsers } from './first-run.ts';
import { ensureTls } from './tls.ts';
import { hashPassword } from './password.ts';
import { readAppPasswords } from './app-passwords.ts';
import { publicKeyFingerprint } from '../render/tls-policy.ts';

/** The image's fixed ids for vmail (Dockerfile); used to preview a render on a host without the user. */
const IMAGE_VMAIL = { uid: 5000, gid: 5000 };

export type ResolveMode = { create: true; log: Logger } | { create: false };

/** The certificate files with the fingerprint of their public key (which the relay replicas pin). */
function withPublicKey(tls: { certFile: string; keyFile: string }): RenderInput['tls'] {
  try {
    return { ...tls, publicKey: publicKeyFingerprint(readFileSync(tls.certFile, 'utf8')) };
  } catch {
    return tls; // not generated yet (check-config on a fresh STATE_DIR)
  }
}

export async function resolveRenderInput(config: Config, mode: ResolveMode, bannedClients: string[] = [], authPolicy?: AuthPolicyEndpoint): Promise<RenderInput> {
  const paths = statePaths(config.stateDir);
  if (!mode.create) {
    return {
      config,
      users: config.users.length > 0 ? config.users : storedFirstRunUsers(paths),
      tls: withPublicKey(config.tls ?? { certFile: paths.generatedCert, keyFile: paths.generatedKey }),
      vmail: userIds(MAILBOX_USER) ?? IMAGE_VMAIL,
      bannedClients,
      dkimKeys: plannedDkimKeys(config, paths),
      appPasswords: readAppPasswords(paths),
    };
  }
  // At a first start these make a certificate, the first-run account and DKIM keys: side by side.
  const [vmail, tlsFiles, users, dkimKeys, handoffHash] = await Promise.all([
    ensureMailboxUser(),
    ensureTls(config, paths, mode.log),
    firstRunUsers(config, paths, mode.log),
    ensureDkimKeys(config, paths, mode.log),
    // Dovecot checks the handoff account like any other: a hash, made afresh at each render.
    config.handoff ? hashPassword(config.handoff.password, 'SHA512-CRYPT') : undefined,
  ]);
  const tls = withPublicKey(tlsFiles);
  return { config, users, tls, vmail, bannedClients, dkimKeys, appPasswords: readAppPasswords(paths), ...(authPolicy ? { authPolicy } : {}), ...(handoffHash ? { handoffHash } : {}) };
}

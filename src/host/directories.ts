// The directories a start needs under STATE_DIR, with their owners, and the files Postfix's chrooted
// processes need inside the queue directory.
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { StatePaths } from '../render/paths.ts';
import { userIds } from './accounts.ts';

export function ensureDir(path: string, mode: number, owner?: { uid: number; gid: number }): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
  if (owner) chownSync(path, owner.uid, owner.gid);
}

/** A system account a daemon runs as; its package creates it. */
function account(name: string, daemon: string): { uid: number; gid: number } {
  const ids = userIds(name);
  if (!ids) throw new Error(`the system user ${name} is missing: is ${daemon} installed?`);
  return ids;
}

export function prepareDirectories(paths: StatePaths, vmail: { uid: number; gid: number }, config: Config): void {
  const postfix = userIds('postfix');
  ensureDir(paths.stateDir, 0o755);
  ensureDir(paths.postfix, 0o755);
  ensureDir(paths.queue, 0o755, { uid: 0, gid: 0 });
  ensureDir(paths.postfixData, 0o700, postfix);
  ensureDir(paths.dovecot, 0o755);
  ensureDir(paths.dovecotBase, 0o755);
  ensureDir(paths.dovecotState, 0o750);
  ensureDir(paths.tls, 0o700);
  // The Maildirs: not on a relay replica (it delivers them to the mailbox replica over LMTP).
  if (config.role !== 'relay') ensureDir(paths.mail, 0o770, vmail);
  const postfixGid = postfix?.gid ?? 0;
  if (config.dkim) {
    ensureDir(paths.opendkim, 0o755);
    // The milter socket: inside the queue (the chrooted smtpd reaches it), for group postfix only.
    ensureDir(paths.opendkimSocketDir, 0o750, { uid: account('opendkim', 'OpenDKIM').uid, gid: postfixGid });
  }
  if (config.resolver && config.role !== 'mailbox') ensureDir(paths.unbound, 0o755, account('unbound', 'unbound'));
  if (config.filter) {
    const rspamd = account('_rspamd', 'rspamd');
    ensureDir(paths.rspamd, 0o755);
    ensureDir(`${paths.rspamd}/local.d`, 0o755);
    ensureDir(paths.rspamdDb, 0o750, rspamd);
    ensureDir(`${paths.rspamdDb}/hs`, 0o750, rspamd);
    ensureDir(paths.rspamdRun, 0o750, rspamd);
    ensureDir(paths.rspamdSocketDir, 0o750, { uid: rspamd.uid, gid: postfixGid });
  }
}

// The files smtpd and smtp need inside their chroot (the queue directory), as Debian's init script copies.
const CHROOT_FILES = ['/etc/localtime', '/etc/services', '/etc/resolv.conf', '/etc/hosts', '/etc/host.conf', '/etc/nsswitch.conf'];

export function copyChrootFiles(paths: StatePaths): void {
  for (const file of CHROOT_FILES) {
    if (!existsSync(file)) continue;
    const target = `${paths.queue}${file}`;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}

/** The system's CA store as OpenSSL hash links (`<hash>.<n>`, made by update-ca-certificates). */
const SYSTEM_CA_PATH = '/etc/ssl/certs';
const HASH_LINK = /^[0-9a-f]{8}\.\d+$/;

/**
 * smtp_tls_CApath is read when a certificate is verified, i.e. inside smtp's chroot: the hash links are
 * copied there dereferenced (a symlink would dangle in the jail), afresh at every start, so a CA
 * removed from the image is gone from the jail too. Returns how many were copied.
 */
export async function copyChrootCaLinks(paths: StatePaths, source = SYSTEM_CA_PATH): Promise<number> {
  const links = existsSync(source) ? readdirSync(source).filter((name) => HASH_LINK.test(name)).sort() : [];
  // What the copy was made from; unchanged (the usual start) means nothing to copy (~25 ms saved).
  const made = links.map((name) => {
    try {
      const { size, mtimeMs } = statSync(`${source}/${name}`);
      return `${name} ${size} ${mtimeMs}`;
    } catch {
      return `${name} dangling`;
    }
  }).join('\n');
  const stamp = `${paths.chrootCaPath}/.relaybox-copied-from`;
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === made) return 0;
  rmSync(paths.chrootCaPath, { recursive: true, force: true });
  mkdirSync(paths.chrootCaPath, { recursive: true, mode: 0o755 });
  // Off the event loop (~150 files, ~40 ms when done one by one on the main thread).
  const copies = await Promise.all(
    links.map((name) =>
      copyFile(`${source}/${name}`, `${paths.chrootCaPath}/${name}`).then(
        () => 1,
        () => 0, // a dangling link in the system store: nothing to copy
      ),
    ),
  );
  writeFileSync(stamp, made, { mode: 0o644 });
  return copies.reduce((sum: number, one) => sum + one, 0);
}

// Reading what the daemons wrote, for the tests' own checks: every file below a directory (queue
// directories, smtp-sink's output) and the messages delivered to a local user's Maildir.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every file below `dir`, recursively; none when it does not exist. */
export function filesBelow(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => (entry.isDirectory() ? filesBelow(join(dir, entry.name)) : [join(dir, entry.name)]));
}

/** The messages in `user`'s INBOX Maildir (`new/` only: not yet seen by an IMAP client; or `new/` and `cur/`). */
export function maildirOf(stateDir: string, domain: string, user: string, folders: Array<'new' | 'cur'> = ['new']): string[] {
  return folders.flatMap((folder) => filesBelow(join(stateDir, 'mail', domain, user, 'Maildir', folder))).map((path) => readFileSync(path, 'latin1'));
}

/** Every delivered message of every local user (new/ and cur/ of each Maildir under STATE_DIR/mail). */
export function allMaildirMessages(stateDir: string): string[] {
  return filesBelow(join(stateDir, 'mail'))
    .filter((path) => /\/Maildir\/(new|cur)\/[^/]+$/.test(path))
    .map((path) => readFileSync(path, 'latin1'));
}

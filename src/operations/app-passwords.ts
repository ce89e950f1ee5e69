// App passwords: several named credentials per account (a device each), scoped to SMTP, IMAP or
// both, shown once when made, kept only as hashes, revoked at once. Changes go to the store and to
// Dovecot's files in one step (src/host/app-passwords.ts); each is an audit event naming the
// credential, never its secret.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { DaemonLogLine } from '../daemons/log-line.ts';
import type { UserEntry } from '../config/values.ts';
import { publishAppPasswords, readAppPasswords, saveAppPasswords } from '../host/app-passwords.ts';
import { hashPassword, randomPassword } from '../host/password.ts';
import { APP_PASSWORD_SCOPES, APP_PASSWORD_SLOTS, appPasswordLogin, type AppPassword, type AppPasswordScope } from '../render/app-passwords.ts';
import { appPasswordsOnly, liveAppPasswords } from '../render/dovecot.ts';
import type { StatePaths } from '../render/paths.ts';
import type { Actor, Audit } from './audit.ts';
import { failed, notFound, usage } from './errors.ts';

/** lastUsed is written to the store at most this often per credential (every login is logged). */
const LAST_USED_SAVE_MS = 60_000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/;

/** What a list shows: everything but the hash. */
export type AppPasswordInfo = Omit<AppPassword, 'hash'>;

export interface AppPasswordSource {
  config: () => Config;
  users: () => UserEntry[];
  paths: Pick<StatePaths, 'appPasswordStore' | 'appPasswordDir'>;
  log: Logger;
}

function info({ hash: _hash, ...rest }: AppPassword): AppPasswordInfo {
  return rest;
}

export class AppPasswordOperations {
  private readonly source: AppPasswordSource;
  private readonly audit: Audit;
  /** One change at a time: each reads, changes and writes the whole store. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Logins seen in Dovecot's log since this start, by `user slot`: Unix ms. */
  private readonly used = new Map<string, number>();

  constructor(source: AppPasswordSource, audit: Audit) {
    this.source = source;
    this.audit = audit;
  }

  private serial<T>(work: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private user(address: string): string {
    const wanted = address.trim().toLowerCase();
    if (!/^[^\s@]+@[^\s@]+$/.test(wanted)) throw usage(`"${address}" is not a user address (user@domain)`);
    if (!this.source.users().some((u) => u.address === wanted)) throw notFound(`${wanted} is not a user in MAIL_USERS or MAIL_USERS_FILE`);
    return wanted;
  }

  /**
   * Saves and publishes; resolves once Dovecot will see the change. Its passwd-file driver stats a
   * file at most once per second of its clock, so a lookup later in the second of the write may
   * still read the old file: the answer waits for the next second, and from then on it holds.
   */
  private async write(passwords: AppPassword[]): Promise<void> {
    saveAppPasswords(this.source.paths, passwords);
    const users = this.source.users();
    publishAppPasswords(this.source.paths, liveAppPasswords(passwords, users), appPasswordsOnly({ config: this.source.config(), users }));
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
  }

  /** A login with an app password (Dovecot's debug line for its slot): logged by name, lastUsed kept. */
  observe(line: DaemonLogLine, now = Date.now()): void {
    const login = appPasswordLogin(line.program, line.msg);
    if (!login) return;
    const credential = readAppPasswords(this.source.paths).find((p) => p.user === login.user && p.slot === login.slot);
    if (!credential) return;
    this.used.set(`${login.user} ${login.slot}`, now);
    this.source.log.info({ event: 'app_password_login', user: login.user, credential: credential.name, scope: credential.scope }, `${login.user} logged in with app password ${credential.name}`);
    if (now - (credential.lastUsed ?? 0) < LAST_USED_SAVE_MS) return;
    void this.serial(() => {
      const passwords = readAppPasswords(this.source.paths);
      const same = passwords.find((p) => p.user === credential.user && p.name === credential.name && p.slot === credential.slot);
      if (!same) return;
      same.lastUsed = now;
      saveAppPasswords(this.source.paths, passwords);
    }).catch((error: Error) => this.source.log.warn({ event: 'app_password_save_failed', error: error.message }, `could not record when an app password was last used: ${error.message}`));
  }

  private withLastUsed(password: AppPassword): AppPasswordInfo {
    const seen = this.used.get(`${password.user} ${password.slot}`);
    return info(seen && seen > (password.lastUsed ?? 0) ? { ...password, lastUsed: seen } : password);
  }

  /** Every credential (of one account, or all), without hashes. */
  list(address?: string): { passwords: AppPasswordInfo[]; appPasswordsOnly: string[] } {
    const user = address === undefined ? undefined : this.user(address);
    const only = appPasswordsOnly({ config: this.source.config(), users: this.source.users() });
    return { passwords: readAppPasswords(this.source.paths).filter((p) => !user || p.user === user).map((p) => this.withLastUsed(p)), appPasswordsOnly: only };
  }

  /** Makes a credential; the answer holds its secret, the only time it is ever shown. */
  add(address: string, name: string, scope: string | undefined, actor: Actor): Promise<AppPasswordInfo & { password: string }> {
    const user = this.user(address);
    if (!NAME.test(name)) throw usage(`app password name "${name}": 1 to 40 letters, digits, dot, dash or underscore, starting with a letter or digit (e.g. laptop, phone-2)`);
    const wanted = (scope ?? 'both').toLowerCase();
    if (!(APP_PASSWORD_SCOPES as readonly string[]).includes(wanted)) throw usage(`--scope "${scope}": use ${APP_PASSWORD_SCOPES.join(', ')}`);
    return this.serial(async () => {
      const passwords = readAppPasswords(this.source.paths);
      const own = passwords.filter((p) => p.user === user);
      if (own.some((p) => p.name === name)) throw failed(`${user} already has an app password named ${name}: revoke it first or choose another name`);
      const slot = Array.from({ length: APP_PASSWORD_SLOTS }, (_, i) => i + 1).find((s) => !own.some((p) => p.slot === s));
      if (slot === undefined) throw failed(`${user} has ${APP_PASSWORD_SLOTS} app passwords, the most an account can have: revoke one first`);
      const password = randomPassword();
      const made: AppPassword = { user, name, scope: wanted as AppPasswordScope, created: Date.now(), slot, hash: await hashPassword(password, 'SHA512-CRYPT') };
      this.used.delete(`${user} ${slot}`);
      await this.write([...passwords, made]);
      this.audit.record(actor, 'app_password_add', { user, credential: name, scope: made.scope }, `added app password ${name} (${made.scope}) for ${user}`);
      return { ...info(made), password };
    });
  }

  /** Removes a credential; Dovecot refuses it from the next login on (no restart). */
  revoke(address: string, name: string, actor: Actor): Promise<AppPasswordInfo> {
    const user = this.user(address);
    return this.serial(async () => {
      const passwords = readAppPasswords(this.source.paths);
      const found = passwords.find((p) => p.user === user && p.name === name);
      if (!found) throw notFound(`${user} has no app password named ${name} (relaybox users app-password list ${user})`);
      await this.write(passwords.filter((p) => p !== found));
      this.audit.record(actor, 'app_password_revoke', { user, credential: name }, `revoked app password ${name} of ${user}`);
      return info(found);
    });
  }
}

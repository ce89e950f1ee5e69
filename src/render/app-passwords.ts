// Pure renderer: app passwords -> the passwd-files Dovecot checks before the account's own password.
// Dovecot's passwd-file holds one line per login, so each credential of an account takes a slot
// (1..APP_PASSWORD_SLOTS) and each slot is its own passdb; the file a passdb reads is chosen by the
// service asking (%s: `smtp` from Postfix's SASL, `imap`), which is how a credential's scope works.
// The login stays the account's address, so Postfix's sender checks, limits and suspension apply.
import type { AppPassword, AppPasswordScope, RenderedFile } from './types.ts';

export type { AppPassword, AppPasswordScope };

export const APP_PASSWORD_SLOTS = 8;
export const APP_PASSWORD_SCOPES = ['smtp', 'imap', 'both'] as const satisfies readonly AppPasswordScope[];
/** The Dovecot services a credential can be limited to (the %s of the passdb path). */
export const APP_PASSWORD_SERVICES = ['smtp', 'imap'] as const;


export function slotFile(dir: string, service: string, slot: number): string {
  return `${dir}/${service}-${slot}`;
}

export function refusedFile(dir: string, service: string): string {
  return `${dir}/main-refused-${service}`;
}

const SLOT_PREFIX = 'app-password-';

/**
 * Dovecot logs (at debug level, for this event alone) which passdb let a login in: the slot names
 * the credential. "auth: Debug: app-password-3(alice@example.com,192.0.2.7,<sess>): Finished passdb lookup"
 */
export const APP_PASSWORD_LOG_DEBUG = `log_debug = event=auth_passdb_request_finished AND result=ok AND passdb_name=${SLOT_PREFIX}*`;
const USED = new RegExp(`^${SLOT_PREFIX}(\\d+)\\(([^,()]+)[,)]`);

/** The account and slot of a login made with an app password, from that debug line. */
export function appPasswordLogin(program: string | undefined, msg: string): { user: string; slot: number } | undefined {
  if (!msg.includes('Finished passdb lookup')) return undefined;
  const match = USED.exec(program?.startsWith('auth') ? msg : '');
  return match ? { user: match[2]!.toLowerCase(), slot: Number(match[1]) } : undefined;
}

/** The passdb blocks: every slot, then the refusal of the main password, before the main passdb. */
export function renderAppPasswordPassdbs(dir: string): string {
  const slots = Array.from({ length: APP_PASSWORD_SLOTS }, (_, index) => index + 1).map(
    (slot) => `passdb {
  name = ${SLOT_PREFIX}${slot}
  driver = passwd-file
  args = scheme=CRYPT username_format=%Lu ${slotFile(dir, '%Ls', slot)}
  auth_verbose = no
}
`,
  );
  return `${slots.join('')}passdb {
  driver = passwd-file
  args = username_format=%Lu ${refusedFile(dir, '%Ls')}
  deny = yes
}
`;
}

function serves(scope: AppPasswordScope, service: string): boolean {
  return scope === 'both' || scope === service;
}

/**
 * One file per service and slot (always all of them, so a passdb never finds its file missing) and
 * per service the accounts whose main password is refused there (APP_PASSWORDS_ONLY: SMTP only).
 */
export function renderAppPasswordFiles(dir: string, passwords: AppPassword[], appPasswordsOnly: string[]): RenderedFile[] {
  const files: RenderedFile[] = [];
  for (const service of APP_PASSWORD_SERVICES) {
    for (let slot = 1; slot <= APP_PASSWORD_SLOTS; slot++) {
      const lines = passwords.filter((p) => p.slot === slot && serves(p.scope, service)).map((p) => `${p.user}:${p.hash}::::::\n`);
      files.push({ path: slotFile(dir, service, slot), content: lines.join(''), mode: 0o640, group: 'dovecot' });
    }
    const refused = service === 'smtp' ? appPasswordsOnly.map((user) => `${user}:::::::\n`) : [];
    files.push({ path: refusedFile(dir, service), content: refused.join(''), mode: 0o640, group: 'dovecot' });
  }
  return files;
}

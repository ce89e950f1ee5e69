// The app passwords' Dovecot files and passdb chain, and the log line that names a credential.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appPasswordLogin, renderAppPasswordFiles, renderAppPasswordPassdbs, APP_PASSWORD_SLOTS } from '../../src/render/app-passwords.ts';
import type { AppPassword } from '../../src/render/types.ts';

const made = (user: string, name: string, scope: AppPassword['scope'], slot: number): AppPassword => ({ user, name, scope, slot, created: 0, hash: `{SHA512-CRYPT}$6$${name}` });

test('each credential is in its slot for the services of its scope; APP_PASSWORDS_ONLY refuses the own password on SMTP only', () => {
  const files = renderAppPasswordFiles('/d', [made('a@x.test', 'laptop', 'both', 1), made('a@x.test', 'printer', 'smtp', 2), made('b@x.test', 'phone', 'imap', 1)], ['b@x.test']);
  const content = (name: string) => files.find((f) => f.path === `/d/${name}`)!.content;
  assert.equal(files.length, 2 * (APP_PASSWORD_SLOTS + 1));
  assert.equal(content('smtp-1'), 'a@x.test:{SHA512-CRYPT}$6$laptop::::::\n');
  assert.equal(content('imap-1'), 'a@x.test:{SHA512-CRYPT}$6$laptop::::::\nb@x.test:{SHA512-CRYPT}$6$phone::::::\n');
  assert.equal(content('smtp-2'), 'a@x.test:{SHA512-CRYPT}$6$printer::::::\n');
  assert.equal(content('imap-2'), '');
  assert.equal(content('main-refused-smtp'), 'b@x.test:::::::\n');
  assert.equal(content('main-refused-imap'), '');
  assert.ok(files.every((f) => f.mode === 0o640 && f.group === 'dovecot'));
});

test('the passdb chain: every slot by service, then the deny passdb', () => {
  const conf = renderAppPasswordPassdbs('/d');
  assert.equal((conf.match(/passdb \{/g) ?? []).length, APP_PASSWORD_SLOTS + 1);
  assert.match(conf, /name = app-password-1\n  driver = passwd-file\n  args = scheme=CRYPT username_format=%Lu \/d\/%Ls-1/);
  assert.match(conf, /\/d\/main-refused-%Ls\n  deny = yes/);
});

test("a login with an app password is read from Dovecot's debug line; other lines are not", () => {
  assert.deepEqual(appPasswordLogin('auth', 'app-password-3(Alice@x.test,127.0.0.1,<abc>): Finished passdb lookup'), { user: 'alice@x.test', slot: 3 });
  assert.deepEqual(appPasswordLogin('auth', 'app-password-1(alice@x.test): Finished passdb lookup'), { user: 'alice@x.test', slot: 1 });
  assert.equal(appPasswordLogin('auth', 'passwd-file(alice@x.test,127.0.0.1): Finished passdb lookup'), undefined);
  assert.equal(appPasswordLogin('imap-login', 'app-password-1(alice@x.test): Finished passdb lookup'), undefined);
  assert.equal(appPasswordLogin('auth', 'app-password-1(alice@x.test,127.0.0.1): Password mismatch'), undefined);
});

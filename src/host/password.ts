// Password hashing through Dovecot's own `doveadm pw`, so every hash is one Dovecot verifies.
import { randomBytes } from 'node:crypto';
import { command } from './command.ts';
import type { HashScheme } from '../config/values.ts';

export async function hashPassword(password: string, scheme: HashScheme = 'BLF-CRYPT'): Promise<string> {
  if (password.length === 0) throw new Error('the password is empty');
  if (/[\r\n]/.test(password)) throw new Error('the password contains a line break');
  // doveadm asks twice; the password travels on stdin, never on the command line.
  const { stdout } = await command('doveadm', ['-O', 'pw', '-s', scheme], { input: `${password}\n${password}\n` });
  const hash = stdout.trim();
  if (!hash.startsWith(`{${scheme}}`)) throw new Error(`doveadm pw returned no ${scheme} hash`);
  return hash;
}

/** A random password for the first-run account: 24 characters from a URL-safe alphabet. */
export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}

// Debian's msmtp as a second, independent submission client (STARTTLS, AUTH PLAIN).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';

export interface MsmtpMessage {
  port: number;
  user: string;
  password: string;
  from: string;
  to: string[];
  message: string;
  /** The client's source address on loopback. */
  sourceIp?: string;
}

/** Sends one message with msmtp; throws with msmtp's own words when it fails. */
export function msmtpSend(options: MsmtpMessage): void {
  const dir = mkdtempSync('/tmp/rbmsmtp-');
  const passwordFile = `${dir}/password`;
  writeFileSync(passwordFile, options.password, { mode: 0o600 });
  try {
    const args = [
      '--host=127.0.0.1', `--port=${options.port}`, '--tls=on', '--tls-starttls=on', '--tls-certcheck=off',
      '--auth=plain', `--user=${options.user}`, `--passwordeval=cat ${passwordFile}`, `--from=${options.from}`,
      ...(options.sourceIp ? [`--source-ip=${options.sourceIp}`] : []), '--', ...options.to,
    ];
    const result = spawnSync('msmtp', args, { input: options.message, encoding: 'utf8', timeout: 30_000 });
    if (result.status !== 0) throw new Error(`msmtp exited ${result.status}: ${result.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

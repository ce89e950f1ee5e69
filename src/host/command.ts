// Commands run to completion (postqueue, postsuper, doveadm, useradd), through execa, which is loaded
// on first use: a start runs none of them before its daemons are up (loading execa takes ~70 ms).
import { execFile } from 'node:child_process';

export interface CommandOptions {
  /** false: resolve with the exit code instead of rejecting on a failure. */
  reject?: boolean;
  timeoutMs?: number;
  input?: string;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  /** stdout and stderr interleaved. */
  all: string;
}

let loading: Promise<typeof import('execa')> | undefined;

export async function command(file: string, args: string[], options: CommandOptions = {}): Promise<CommandResult> {
  const { execa } = await (loading ??= import('execa'));
  const result = await execa(file, args, { reject: options.reject ?? true, all: true, ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}), ...(options.input !== undefined ? { input: options.input } : {}) });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ''), all: String(result.all ?? '') };
}

/**
 * The two commands on the path to the first ready (mkfifo for Postfix's log, openssl for a first
 * self-signed certificate): plain execFile, so that a start does not wait for execa to load.
 */
export function startCommand(file: string, args: string[], timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${file} failed: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
  });
}

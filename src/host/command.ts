// Commands run to completion (postqueue, postsuper, openssl, doveadm, mkfifo, useradd), through execa,
// which is loaded on first use: a start runs none of them before its daemons are up (~80 ms sooner).
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

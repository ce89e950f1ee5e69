// Debian's swaks as a second, independent SMTP client: STARTTLS, AUTH PLAIN, one message.
import { execFile } from 'node:child_process';

export interface SwaksResult {
  /** swaks's exit code: 0 when the message was accepted. */
  code: number;
  /** The server's reply to the end of DATA ("550 5.7.1 ..."), from the transcript. */
  dataReply: string;
  transcript: string;
}

/**
 * Sends `data` on a submission port (STARTTLS, or implicit TLS on 465); `from: ''` is MAIL FROM:<>.
 * AUTH PLAIN when `user` is given; `certificate` is presented as the TLS client certificate.
 */
export function swaks(options: { port: number; user?: string; password?: string; certificate?: { cert: string; key: string }; from: string; to: string; data: string; implicitTls?: boolean }): Promise<SwaksResult> {
  const auth = options.user ? ['--auth', 'PLAIN', '--auth-user', options.user, '--auth-password', options.password ?? ''] : [];
  const certificate = options.certificate ? ['--tls-cert', options.certificate.cert, '--tls-key', options.certificate.key] : [];
  const args = ['--server', `127.0.0.1:${options.port}`, options.implicitTls ? '--tls-on-connect' : '--tls', ...certificate, ...auth, '--from', options.from === '' ? '<>' : options.from, '--to', options.to, '--data', '-', '--helo', 'client.example', '--timeout', '30'];
  return new Promise((resolve) => {
    const child = execFile('swaks', args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      const transcript = `${stdout}${stderr}`;
      // The reply to the message's final dot: the last server line before QUIT ("<~* 550 ..." when refused).
      const quit = transcript.search(/^ *[-~]> QUIT/m);
      const replies = [...transcript.slice(0, quit < 0 ? undefined : quit).matchAll(/^ *<[~*]* +(\d{3}[ -].*)$/gm)].map((m) => m[1]!);
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, dataReply: replies.at(-1) ?? '', transcript });
    });
    child.stdin?.end(options.data.replace(/\r?\n/g, '\r\n'));
  });
}

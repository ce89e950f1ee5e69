// The CLI's side of the control socket: one JSON request to the running supervisor. Exit codes that
// scripts can rely on: 0 done, 1 refused or failed, 2 bad usage, 3 the supervisor cannot be reached.
import { request } from 'node:http';
import { userInfo } from 'node:os';

export const EXIT_UNREACHABLE = 3;

export interface ControlAnswer {
  status: number;
  body: unknown;
}

export class Unreachable extends Error {}

function actorName(): string {
  try {
    return process.env.SUDO_USER || userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

/** Sends one request over the socket; rejects with Unreachable when nothing listens there. */
export function control(socketPath: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const payload = method === 'GET' ? undefined : JSON.stringify(body ?? {});
    const req = request(
      { socketPath, method, path, headers: { 'x-relaybox-actor': actorName(), ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { error: text } });
          }
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? 'it is not running (or STATE_DIR is not the one it runs with)' : error.code === 'EACCES' ? 'permission denied (the socket is root\'s: run as root, e.g. docker compose exec relaybox relaybox ...)' : error.message;
      reject(new Unreachable(`cannot reach the supervisor on ${socketPath}: ${why}`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

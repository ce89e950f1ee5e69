// The Postfix policy delegation protocol (SMTPD_POLICY_README) on a unix socket in the queue
// directory, served by the supervisor: `name=value` lines ending with an empty line in, one
// `action=...` line and an empty line out, several requests per connection. Postfix's smtpd runs as
// `postfix` and reaches the socket from its chroot as private/<name>. When this service does not
// answer, Postfix uses smtpd_policy_service_default_action: a temporary error, never acceptance.
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProbeResult } from '../protocol/probes.ts';
import { UnixSocketServer, UnixSocketService } from '../protocol/unix-server.ts';

export type PolicyRequest = Record<string, string>;

/** Answers one request with an access(5) action (`DUNNO`, `451 4.7.1 ...`, `HOLD ...`). */
export type PolicyDecider = (request: PolicyRequest) => Promise<string>;

const MAX_REQUEST_BYTES = 64 * 1024;
/** Said when deciding failed (e.g. the store could not be read): temporary, never "no limit". */
export const UNAVAILABLE_ACTION = '451 4.3.5 Sending limits cannot be checked right now; try again later';

export function parsePolicyRequest(text: string): PolicyRequest {
  const request: PolicyRequest = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) request[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return request;
}

export class PolicyService extends UnixSocketService {
  protected readonly server: UnixSocketServer;
  private readonly decide: PolicyDecider;
  private readonly log: Logger;

  /** `owner`: who may connect (Postfix's mail_owner); the socket is 0600. */
  constructor(options: { socketPath: string; owner: { uid: number; gid: number } | undefined; decide: PolicyDecider; log: Logger }) {
    super();
    this.decide = options.decide;
    this.log = options.log;
    this.server = new UnixSocketServer({ ...options, event: 'policy_service', label: 'policy service', serve: (socket) => this.serve(socket) });
  }

  private serve(socket: Socket): void {
    socket.setEncoding('utf8');
    let buffer = '';
    let answering: Promise<void> = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES) {
        socket.destroy();
        return;
      }
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const request = parsePolicyRequest(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        // Answers go out in the order the requests came.
        answering = answering.then(async () => {
          const action = await this.answer(request);
          if (!socket.destroyed) socket.write(`action=${action}\n\n`);
        });
      }
    });
  }

  private async answer(request: PolicyRequest): Promise<string> {
    if (request.request !== 'smtpd_access_policy') return 'DUNNO';
    try {
      return await this.decide(request);
    } catch (error) {
      this.log.error({ event: 'policy_service_error', error: (error as Error).message }, `policy decision failed, answering a temporary error: ${(error as Error).message}`);
      return UNAVAILABLE_ACTION;
    }
  }
}

/** The readiness probe: a request that decides nothing must get an action back. */
export function probePolicyService(socketPath: string, timeoutMs = 2000): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  const result = (error?: string): ProbeResult => ({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    let received = '';
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result(error));
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('request=smtpd_access_policy\nprotocol_state=CONNECT\nprotocol_name=SMTP\nclient_address=127.0.0.254\n\n'));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\n\n')) finish(/^action=\S/.test(received) ? undefined : `unexpected answer ${JSON.stringify(received.slice(0, 80))}`);
    });
    socket.on('error', (error) => finish(error.message));
    socket.on('close', () => finish(`closed after ${JSON.stringify(received.slice(0, 80))}`));
  });
}

// Dovecot's auth policy interface, served by the supervisor on loopback: before checking a password
// (IMAP LOGIN, or SMTP AUTH through Postfix's SASL socket) Dovecot POSTs {"login","remote","protocol"}
// to `<url>?command=allow`, and {"status":-1,"msg":...} fails the login. A banned address is refused
// here, so bans hold on IMAP as on the SMTP ports. A small node:http server of its own, on
// 127.0.0.1 with a random port and a random per-start API key; never the public PORT_HTTP.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { ProbeResult } from '../protocol/probes.ts';
import type { AuthPolicyEndpoint } from '../render/types.ts';

// Not `import … from 'node:http'`: as an ES module import it evaluates every export of node:http,
// undici's fetch included (~10 ms of every start).
const { createServer, request: httpRequest } = process.getBuiltinModule('node:http');

const MAX_BODY_BYTES = 16 * 1024;
export const BANNED_MESSAGE = 'too many failed authentications from this address; try again later';

export class AuthPolicyServer {
  private server: Server | undefined;
  private readonly apiKey = randomBytes(24).toString('hex');
  private readonly nonce = randomBytes(16).toString('hex');
  private readonly isBanned: (address: string) => boolean;
  private readonly log: Logger;
  endpoint: AuthPolicyEndpoint | undefined;

  constructor(isBanned: (address: string) => boolean, log: Logger) {
    this.isBanned = isBanned;
    this.log = log;
  }

  async start(): Promise<AuthPolicyEndpoint> {
    const server = createServer((request, response) => {
      const reply = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(body === undefined ? '' : JSON.stringify(body));
      };
      if (request.method !== 'POST') return reply(405, { error: 'POST only' });
      const given = Buffer.from(String(request.headers['x-api-key'] ?? ''));
      const expected = Buffer.from(this.apiKey);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply(401, { error: 'a valid X-API-Key is required' });
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > MAX_BODY_BYTES) request.destroy();
      });
      request.on('end', () => {
        const command = new URL(request.url ?? '/', 'http://policy').searchParams.get('command');
        if (command !== 'allow') return reply(200, undefined);
        let remote = '';
        try {
          remote = String((JSON.parse(body) as { remote?: unknown }).remote ?? '');
        } catch {
          return reply(400, { error: 'a JSON body is required' });
        }
        if (!this.isBanned(remote)) return reply(200, { status: 0, msg: '' });
        this.log.debug({ event: 'ban_refused_login', address: remote }, `refused a login from banned ${remote}`);
        return reply(200, { status: -1, msg: BANNED_MESSAGE });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    this.server = server;
    this.endpoint = { url: `http://127.0.0.1:${port}/policy`, apiKey: this.apiKey, nonce: this.nonce };
    return this.endpoint;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.closeAllConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The readiness probe: Dovecot's own kind of request for the probe address must be allowed. */
export function probeAuthPolicy(endpoint: AuthPolicyEndpoint, timeoutMs = 2000): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  const result = (error?: string): ProbeResult => ({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
  return new Promise((resolve) => {
    const body = JSON.stringify({ login: '', remote: '127.0.0.254', protocol: 'probe' });
    const request = httpRequest(`${endpoint.url}?command=allow`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': endpoint.apiKey }, timeout: timeoutMs }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve(result(response.statusCode === 200 && /"status":0/.test(text) ? undefined : `HTTP ${response.statusCode}`)));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error) => resolve(result(error.message)));
    request.end(body);
  });
}

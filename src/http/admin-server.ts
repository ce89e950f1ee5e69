// The admin listener (PORT_ADMIN, ADMIN_BIND_ADDRESS): the operations as a JSON API and the web
// console, for a bearer token or a logged-in session only. Failed logins and wrong tokens count
// toward the address's ban like failed SMTP/IMAP logins; a banned address is refused before any
// check. Nothing here returns a secret; a message body only to an admin who asks for that message.
import type { FastifyReply, FastifyRequest } from 'fastify';
import Fastify from 'fastify';
import type { Actor } from '../operations/audit.ts';
import type { Operations } from '../operations/operations.ts';
import { CONSOLE_ASSETS, CONSOLE_CSP } from './console/assets.ts';
import { clearedCookie, cookieValue, CSRF_HEADER, sameSecret, SESSION_COOKIE, sessionCookie, Sessions } from './admin-sessions.ts';
import { API, registerOperationRoutes } from './operations-routes.ts';
import { noSchemas } from './server.ts';

export interface AdminView {
  ops: Operations;
  /** ADMIN_TOKEN and ADMIN_USERS as they are now (they follow reloads). */
  access: () => { token?: string; users: string[] };
  /** The mail password of a user, checked by Dovecot (with the client's address). */
  authenticate: (user: string, password: string, address: string) => Promise<'ok' | 'fail'>;
  isBanned: (address: string) => boolean;
  /** One failed login from the address (toward AUTH_BAN_THRESHOLD). */
  failed: (address: string) => void;
}

const OPEN = new Set([`${API}/login`, `${API}/logout`, `${API}/session`]);
const SAFE_METHODS = new Set(['GET', 'HEAD']);

export function buildAdminServer(view: AdminView) {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } } });
  const sessions = new Sessions();
  const actors = new WeakMap<FastifyRequest, Actor>();
  const sessionOf = (request: FastifyRequest) => sessions.find(cookieValue(request.headers.cookie, SESSION_COOKIE));

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY').header('content-security-policy', CONSOLE_CSP);
    if (request.url.startsWith(API)) reply.header('cache-control', 'no-store');
  });

  const refuse = (reply: FastifyReply, code: number, error: string) => reply.code(code).send({ error });

  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith(`${API}/`) || OPEN.has(request.url.split('?')[0]!)) return;
    if (view.isBanned(request.ip)) return refuse(reply, 403, 'this address is banned after failed logins');
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (request.headers.authorization !== undefined) {
      const { token } = view.access();
      if (bearer && token && sameSecret(bearer, token)) {
        actors.set(request, { who: 'token', via: request.ip });
        return;
      }
      view.failed(request.ip);
      return refuse(reply, 401, 'a valid bearer token (ADMIN_TOKEN) is required');
    }
    const session = sessionOf(request);
    if (!session) return refuse(reply, 401, `log in first (POST ${API}/login) or send Authorization: Bearer <ADMIN_TOKEN>`);
    if (!SAFE_METHODS.has(request.method) && !sameSecret(String(request.headers[CSRF_HEADER] ?? ''), session.csrf)) return refuse(reply, 403, `a state-changing request needs the session's ${CSRF_HEADER} header`);
    actors.set(request, { who: session.who, via: request.ip });
  });

  app.post(`${API}/login`, async (request, reply) => {
    if (view.isBanned(request.ip)) return refuse(reply, 403, 'this address is banned after failed logins');
    const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
    const { token, users } = view.access();
    let who: string | undefined;
    if (typeof body.token === 'string') {
      if (token && sameSecret(body.token, token)) who = 'token';
    } else if (typeof body.user === 'string' && typeof body.password === 'string') {
      const user = body.user.trim().toLowerCase();
      // Checked by Dovecot even for a user who is not an admin, so the answer's time says nothing.
      const verdict = await view.authenticate(user, body.password, request.ip).catch(() => undefined);
      if (verdict === undefined) return refuse(reply, 503, "the password cannot be checked now (Dovecot's auth service does not answer)");
      if (verdict === 'ok' && users.includes(user)) who = user;
    } else {
      return refuse(reply, 400, 'give {"token": "..."} or {"user": "...", "password": "..."}');
    }
    if (!who) {
      view.failed(request.ip);
      return refuse(reply, 401, 'wrong token, or wrong user or password (or not one of ADMIN_USERS)');
    }
    const { id, session } = sessions.create(who);
    return reply.header('set-cookie', sessionCookie(id)).send({ who, csrf: session.csrf });
  });

  app.get(`${API}/session`, async (request, reply) => {
    const session = sessionOf(request);
    return session ? reply.send({ who: session.who, csrf: session.csrf }) : refuse(reply, 401, 'not logged in');
  });

  app.post(`${API}/logout`, async (request, reply) => {
    sessions.end(cookieValue(request.headers.cookie, SESSION_COOKIE));
    return reply.header('set-cookie', clearedCookie).send({ ok: true });
  });

  registerOperationRoutes(app, view.ops, (request) => actors.get(request) ?? { who: 'unknown', via: request.ip });

  for (const [path, asset] of Object.entries(CONSOLE_ASSETS)) app.get(path, async (_request, reply) => reply.type(asset.type).send(asset.body));
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
  return app;
}

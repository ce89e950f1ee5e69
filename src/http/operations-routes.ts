// The operations as JSON over HTTP: the same routes on the control socket (the CLI) and on the admin
// listener (the API and the console), each with its own idea of who is asking. A refused request
// says what is wrong and changes nothing: 400 for a bad request, 404 for what is not there, 409 for
// what cannot be done now.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../operations/audit.ts';
import { OperationError, usage } from '../operations/errors.ts';
import type { Operations } from '../operations/operations.ts';
import { parseQueueFilter } from '../operations/queue-read.ts';
import { QUEUE_ACTIONS, type QueueAction } from '../operations/queue.ts';

export const API = '/api/v1';

const STATUS = { usage: 400, not_found: 404, failed: 409 } as const;

type Body = Record<string, unknown>;

function body(request: FastifyRequest): Body {
  const value = request.body;
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw usage('the request body must be a JSON object');
  return value as Body;
}

function text(from: Body, key: string, required = false): string | undefined {
  const value = from[key];
  if (value === undefined || value === null || value === '') {
    if (required) throw usage(`${key}: required`);
    return undefined;
  }
  if (typeof value !== 'string') throw usage(`${key}: a string`);
  return value;
}

/** Sends an operation's result, or its refusal with the status that fits. */
async function answer(reply: FastifyReply, work: () => Promise<unknown> | unknown): Promise<FastifyReply> {
  try {
    return reply.send(await work());
  } catch (error) {
    if (error instanceof OperationError) return reply.code(STATUS[error.kind]).send({ error: error.message, kind: error.kind });
    return reply.code(500).send({ error: (error as Error).message, kind: 'internal' });
  }
}

/** Queue filter from a request body's `filter` object (and `ids`), checked like the query string. */
function filterFrom(from: Body) {
  const raw = from.filter ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw usage('filter: an object such as {"state": "deferred", "sender": "alice@"}');
  const ids = from.ids;
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))) throw usage('ids: a list of queue ids');
  return parseQueueFilter({ ...(raw as Record<string, string>), ...(ids ? { id: ids as string[] } : {}) });
}

export function registerOperationRoutes(app: FastifyInstance, ops: Operations, actorOf: (request: FastifyRequest) => Actor): void {
  app.get(`${API}/status`, (_request, reply) => answer(reply, () => ops.status()));

  // Each relay replica has its own queue: the answer says whose it is.
  app.get(`${API}/queue`, (request, reply) => answer(reply, async () => ({ replica: ops.replica, ...(await ops.queue.list(parseQueueFilter(request.query as Record<string, string>))) })));
  app.get(`${API}/queue/:id`, (request, reply) =>
    answer(reply, () => {
      const { id } = request.params as { id: string };
      const { body: withBody } = request.query as { body?: string };
      return ops.queue.show(id, withBody === '1' || withBody === 'true');
    }),
  );
  app.post(`${API}/queue/:action`, (request, reply) =>
    answer(reply, () => {
      const { action } = request.params as { action: string };
      if (!(QUEUE_ACTIONS as readonly string[]).includes(action)) throw usage(`"${action}" is not a queue action; use one of ${QUEUE_ACTIONS.join(', ')}`);
      const given = body(request);
      return ops.queue.act(action as QueueAction, filterFrom(given), actorOf(request), given.all === true);
    }),
  );

  app.get(`${API}/users`, (_request, reply) => answer(reply, () => ops.accounts.list()));
  app.post(`${API}/users/:user/suspend`, (request, reply) => answer(reply, () => ops.accounts.suspend((request.params as { user: string }).user, text(body(request), 'reason', true)!, actorOf(request))));
  app.post(`${API}/users/:user/unsuspend`, (request, reply) =>
    answer(reply, () => {
      const held = text(body(request), 'held');
      if (held !== undefined && held !== 'release' && held !== 'delete') throw usage('held: release or delete (what to do with the mail put on hold)');
      return ops.accounts.unsuspend((request.params as { user: string }).user, actorOf(request), held);
    }),
  );
  app.post(`${API}/users/:user/held/:action`, (request, reply) =>
    answer(reply, () => {
      const { user, action } = request.params as { user: string; action: string };
      if (action !== 'release' && action !== 'delete') throw usage(`"${action}": release or delete`);
      return ops.accounts.heldMail(user, action, actorOf(request));
    }),
  );

  app.get(`${API}/app-passwords`, (_request, reply) => answer(reply, () => ops.appPasswords.list()));
  app.get(`${API}/users/:user/app-passwords`, (request, reply) => answer(reply, () => ops.appPasswords.list((request.params as { user: string }).user)));
  app.post(`${API}/users/:user/app-passwords`, (request, reply) =>
    answer(reply, () => {
      const given = body(request);
      return ops.appPasswords.add((request.params as { user: string }).user, text(given, 'name', true)!, text(given, 'scope'), actorOf(request));
    }),
  );
  app.delete(`${API}/users/:user/app-passwords/:name`, (request, reply) =>
    answer(reply, () => {
      const { user, name } = request.params as { user: string; name: string };
      return ops.appPasswords.revoke(user, name, actorOf(request));
    }),
  );

  app.get(`${API}/bans`, (_request, reply) => answer(reply, () => ops.bans.list()));
  app.post(`${API}/bans`, (request, reply) =>
    answer(reply, () => {
      const given = body(request);
      return ops.bans.ban(text(given, 'address', true)!, text(given, 'duration') ?? '1h', text(given, 'reason') ?? '', actorOf(request));
    }),
  );
  app.delete(`${API}/bans/:address`, (request, reply) => answer(reply, () => ops.bans.lift((request.params as { address: string }).address, actorOf(request))));

  app.get(`${API}/dns`, (_request, reply) => answer(reply, () => ops.dns()));
  app.get(`${API}/dkim`, (_request, reply) => answer(reply, () => ops.dkim.list()));
  app.post(`${API}/dkim/:domain/:step`, (request, reply) =>
    answer(reply, () => {
      const { domain, step } = request.params as { domain: string; step: string };
      const given = body(request);
      const actor = actorOf(request);
      switch (step) {
        case 'start':
          return ops.dkim.start(domain, text(given, 'selector'), actor);
        case 'verify':
          return ops.dkim.verify(domain, { wait: text(given, 'wait'), grace: text(given, 'grace') }, actor);
        case 'retire':
          return ops.dkim.retire(domain, given.force === true, actor);
        case 'cancel':
          return ops.dkim.cancel(domain, actor);
        default:
          throw usage(`"${step}" is not a rotation step; use start, verify, retire or cancel`);
      }
    }),
  );
}

// The environment contract: every variable relaybox reads, its default, its documentation and its
// validation, one file per area (areas/). The Config type is inferred from this schema; README's
// reference is generated from it, in the order of the areas below.
import { z } from 'zod';
import type { Issue } from './areas/area.ts';
import * as access from './areas/access.ts';
import * as clientCerts from './areas/client-certs.ts';
import * as admin from './areas/admin.ts';
import * as dkim from './areas/dkim.ts';
import * as direct from './areas/direct.ts';
import * as filter from './areas/filter.ts';
import * as host from './areas/host.ts';
import * as identity from './areas/identity.ts';
import * as limits from './areas/limits.ts';
import * as mailboxes from './areas/mailboxes.ts';
import * as operations from './areas/operations.ts';
import * as replicas from './areas/replicas.ts';
import * as routes from './areas/routes.ts';
import * as sending from './areas/sending.ts';
import * as upstream from './areas/upstream.ts';

export { envDocs, type EnvDoc } from './fields.ts';

/** One entry per environment variable; the keys are the public interface. */
export const envVariables = z.object({
  ...identity.variables,
  ...mailboxes.variables,
  ...upstream.variables,
  ...routes.variables,
  ...direct.variables,
  ...access.variables,
  ...clientCerts.variables,
  ...dkim.variables,
  ...filter.variables,
  ...host.variables,
  ...limits.variables,
  ...sending.variables,
  ...replicas.variables,
  ...operations.variables,
  ...admin.variables,
});

export const envSchema = envVariables
  .superRefine((env, ctx) => {
    const issue: Issue = (variable, message, input = '') => ctx.addIssue({ code: 'custom', path: [variable], message, input });
    mailboxes.check(env, issue);
    upstream.check(env, issue);
    routes.check(env, issue);
    direct.check(env, issue);
    sending.check(env, issue);
    access.check(env, issue);
    clientCerts.check(env, issue);
    dkim.check(env, issue);
    filter.check(env, issue);
    host.check(env, issue);
    replicas.check(env, issue);
    operations.check(env, issue);
    admin.check(env, issue);
  })
  .transform((env) => {
    const config = {
      ...identity.toConfig(env),
      ...mailboxes.toConfig(env),
      ...upstream.toConfig(env),
      ...routes.toConfig(env),
      ...direct.toConfig(env),
      ...access.toConfig(env),
      ...clientCerts.toConfig(env),
      ...dkim.toConfig(env),
      ...filter.toConfig(env),
      ...host.toConfig(env),
      ...limits.toConfig(env),
      ...sending.toConfig(env),
      ...replicas.toConfig(env),
      ...operations.toConfig(env),
      ...admin.toConfig(env),
    };
    // What a role does not run: a mailbox replica neither signs nor filters (the relays do) and
    // serves only its own listeners.
    const mailbox = config.role === 'mailbox';
    return {
      ...config,
      ports: replicas.portsForRole(config.ports, config.role, config.handoff !== undefined),
      dkim: mailbox ? undefined : config.dkim,
      filter: mailbox ? undefined : config.filter,
    };
  });

export type Config = z.output<typeof envSchema>;

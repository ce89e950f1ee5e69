// Running relaybox: the restart budget, the selftest and the logs.
import { z } from 'zod';
import { envDocs, integer, secretFile, text } from '../fields.ts';
import { eitherOr, type Issue, type Values } from './area.ts';

export const variables = {
  RESTART_BUDGET: integer({ group: 'Operations', default: '10', description: 'Restarts of one daemon within 5 minutes before the supervisor gives up: /health turns 503 and, 15 s later, relaybox exits 1 so that Docker or Kubernetes restarts the container.' }, 1, 1000, 'restarts'),
  SELFTEST_USER: text({ group: 'Operations', description: 'Account used by `relaybox selftest` and GET /selftest for the authenticated step (a real user from MAIL_USERS; nothing is sent).' }),
  SELFTEST_PASSWORD: text({ group: 'Operations', description: "SELFTEST_USER's password.", secret: true }),
  SELFTEST_PASSWORD_FILE: secretFile({ group: 'Operations', description: 'File holding SELFTEST_PASSWORD.' }),
  SELFTEST_TOKEN: text({ group: 'Operations', description: 'Enables GET /selftest for callers sending `Authorization: Bearer <token>`; unset = /selftest is disabled (404).', secret: true }),
  SELFTEST_TOKEN_FILE: secretFile({ group: 'Operations', description: 'File holding SELFTEST_TOKEN.' }),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'one of fatal, error, warn, info, debug, trace, silent' })
    .default('info')
    .register(envDocs, { group: 'Logging', default: 'info', description: 'Minimum level of the JSON log lines on stdout.' }),
  LOG_FORMAT: z
    .enum(['json', 'pretty'], { error: 'json or pretty' })
    .default('json')
    .register(envDocs, { group: 'Logging', default: 'json', description: '`json`: one JSON object per line; `pretty`: human-readable lines.' }),
};

type Env = Values<typeof variables>;

export function check(env: Env, issue: Issue): void {
  eitherOr(env, issue, 'SELFTEST_PASSWORD', 'SELFTEST_PASSWORD_FILE');
  eitherOr(env, issue, 'SELFTEST_TOKEN', 'SELFTEST_TOKEN_FILE');
  if (Boolean(env.SELFTEST_USER) !== Boolean(env.SELFTEST_PASSWORD || env.SELFTEST_PASSWORD_FILE)) {
    issue(env.SELFTEST_USER ? 'SELFTEST_PASSWORD' : 'SELFTEST_USER', 'SELFTEST_USER and SELFTEST_PASSWORD (or SELFTEST_PASSWORD_FILE) go together; set both or neither');
  }
  const token = env.SELFTEST_TOKEN || env.SELFTEST_TOKEN_FILE;
  if (token && token.length < 16) issue(env.SELFTEST_TOKEN ? 'SELFTEST_TOKEN' : 'SELFTEST_TOKEN_FILE', 'at least 16 characters (e.g. openssl rand -hex 24)');
}

export function toConfig(env: Env) {
  const token = env.SELFTEST_TOKEN || env.SELFTEST_TOKEN_FILE;
  return {
    restartBudget: env.RESTART_BUDGET,
    log: { level: env.LOG_LEVEL, format: env.LOG_FORMAT },
    selftest: {
      credentials: env.SELFTEST_USER ? { user: env.SELFTEST_USER, password: (env.SELFTEST_PASSWORD || env.SELFTEST_PASSWORD_FILE) ?? '' } : undefined,
      token: token || undefined,
    },
  };
}

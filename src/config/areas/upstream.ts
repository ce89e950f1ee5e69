// Where outgoing mail goes: the smarthost and its credentials.
import { secretFile, take, text } from '../fields.ts';
import { parseRelayHost } from '../values.ts';
import { eitherOr, type Issue, type Values } from './area.ts';

export const variables = {
  RELAY_HOST: text({ group: 'Upstream', description: "Smarthost for outgoing mail as `[host]:port` (no MX lookup) or `host:port`. Empty = deliver directly to the recipients' MX hosts." }).transform((raw, ctx) =>
    raw.trim() === '' ? undefined : take(parseRelayHost(raw), ctx, raw),
  ),
  RELAY_USERNAME: text({ group: 'Upstream', description: 'SASL user name at the smarthost. With credentials set, TLS to the smarthost is required.' }),
  RELAY_USERNAME_FILE: secretFile({ group: 'Upstream', description: 'File holding RELAY_USERNAME.' }),
  RELAY_PASSWORD: text({ group: 'Upstream', description: 'SASL password at the smarthost.', secret: true }),
  RELAY_PASSWORD_FILE: secretFile({ group: 'Upstream', description: 'File holding RELAY_PASSWORD (a Docker or Kubernetes secret).' }),
};

type Env = Values<typeof variables>;

export function check(env: Env, issue: Issue): void {
  eitherOr(env, issue, 'RELAY_USERNAME', 'RELAY_USERNAME_FILE');
  eitherOr(env, issue, 'RELAY_PASSWORD', 'RELAY_PASSWORD_FILE');
  const hasUser = Boolean(env.RELAY_USERNAME || env.RELAY_USERNAME_FILE);
  const hasPassword = Boolean(env.RELAY_PASSWORD || env.RELAY_PASSWORD_FILE);
  if (hasUser !== hasPassword) issue(hasUser ? 'RELAY_PASSWORD' : 'RELAY_USERNAME', 'RELAY_USERNAME and RELAY_PASSWORD (or their _FILE forms) go together; set both or neither');
  if (hasUser && !env.RELAY_HOST) issue('RELAY_HOST', 'required when relay credentials are set: the smarthost as [host]:port');
}

export function toConfig(env: Env) {
  const username = env.RELAY_USERNAME || env.RELAY_USERNAME_FILE;
  const password = env.RELAY_PASSWORD || env.RELAY_PASSWORD_FILE;
  return {
    relay: env.RELAY_HOST && { ...env.RELAY_HOST, credentials: username && password ? { username, password } : undefined },
  };
}

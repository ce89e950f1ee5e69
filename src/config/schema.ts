// The environment contract: every variable relaybox reads, its default, its documentation and its
// validation. The Config type is inferred from this schema; README's reference is generated from it.
import { isAbsolute } from 'node:path';
import { isIP } from 'node:net';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { LISTENERS, type Ports } from '../listeners.ts';
import { ALIASES_DESCRIPTION, duration, integer, parseAliases, pemFile, portVariables, readText, secretFile, take, text, usersFile, usersList } from './fields.ts';
import { MIN_TRUSTED_PREFIX, parseDomain, parseQuota, parseRelayHost, parseTrustedNetwork, splitList } from './values.ts';

export { envDocs, type EnvDoc } from './fields.ts';
import { envDocs } from './fields.ts';

/** One entry per environment variable; the keys are the public interface. */
export const envVariables = z.object({
    MAIL_HOSTNAME: text({ group: 'Identity', description: 'Fully-qualified host name of this relay: SMTP banner, HELO name, TLS certificate name. Required.' }).transform((raw, ctx) => {
      if (raw.trim() === '') {
        ctx.addIssue({ code: 'custom', message: 'required: the fully-qualified host name of this relay, e.g. mail.example.com', input: raw });
        return z.NEVER;
      }
      return take(parseDomain(raw), ctx, raw);
    }),
    MAIL_DOMAINS: text({ group: 'Identity', description: 'Comma-separated domains this box receives mail for on port 25 (delivered to local mailboxes). Empty = relay only.', list: true }).transform((raw, ctx) => [
      ...new Set(splitList(raw).map((item) => take(parseDomain(item), ctx, item))),
    ]),
    MAIL_USERS: usersList,
    MAIL_USERS_FILE: usersFile,
    MAIL_ALIASES: text({ group: 'Mailboxes', description: ALIASES_DESCRIPTION, list: true }).transform(parseAliases),
    MAIL_ALIASES_FILE: text({ group: 'Mailboxes', description: 'Path of a file in the MAIL_ALIASES format; lines starting with # are comments. May be combined with MAIL_ALIASES; an alias in both is an error.' }).transform((path, ctx) =>
      parseAliases(path === '' ? '' : (readText(path, ctx) ?? ''), ctx),
    ),
    MAILBOX_QUOTA: text({ group: 'Mailboxes', description: 'Storage quota per mailbox, e.g. `2G` or `500M`, enforced by Dovecot; mail to a full mailbox is refused at RCPT with 552 5.2.2. Empty = no quota.' }).transform((raw, ctx) =>
      raw.trim() === '' ? undefined : take(parseQuota(raw), ctx, raw),
    ),
    RELAY_HOST: text({ group: 'Upstream', description: 'Smarthost for outgoing mail as `[host]:port` (no MX lookup) or `host:port`. Empty = deliver directly to the recipients\' MX hosts.' }).transform((raw, ctx) =>
      raw.trim() === '' ? undefined : take(parseRelayHost(raw), ctx, raw),
    ),
    RELAY_USERNAME: text({ group: 'Upstream', description: 'SASL user name at the smarthost. With credentials set, TLS to the smarthost is required.' }),
    RELAY_USERNAME_FILE: secretFile({ group: 'Upstream', description: 'File holding RELAY_USERNAME.' }),
    RELAY_PASSWORD: text({ group: 'Upstream', description: 'SASL password at the smarthost.', secret: true }),
    RELAY_PASSWORD_FILE: secretFile({ group: 'Upstream', description: 'File holding RELAY_PASSWORD (a Docker or Kubernetes secret).' }),
    TRUSTED_NETWORKS: text({
      group: 'Access',
      description: `Comma-separated CIDRs whose clients may relay through port 25 without AUTH. Empty = nobody. At most a /${MIN_TRUSTED_PREFIX[4]} (IPv4) or /${MIN_TRUSTED_PREFIX[6]} (IPv6) each: wider is refused as an open relay.`,
      list: true,
    }).transform((raw, ctx) => splitList(raw).map((item) => take(parseTrustedNetwork(item), ctx, item))),
    TLS_CERT_FILE: pemFile({ group: 'TLS', description: 'PEM certificate (chain) for SMTP and IMAP. Unset: a self-signed certificate for MAIL_HOSTNAME is generated once into STATE_DIR/tls and reused, with a warning at every start.' }, 'certificate'),
    TLS_KEY_FILE: pemFile({ group: 'TLS', description: 'PEM private key matching TLS_CERT_FILE.' }, 'key'),
    ...portVariables,
    BIND_ADDRESS: text({ group: 'Ports', description: 'IP address every listener binds to. Empty = all addresses.' }).transform((raw, ctx) => {
      const address = raw.trim();
      if (address !== '' && isIP(address) === 0) {
        ctx.addIssue({ code: 'custom', message: 'an IPv4 or IPv6 address such as 127.0.0.1, or empty for all addresses', input: raw });
        return z.NEVER;
      }
      return address === '' ? undefined : address;
    }),
    STATE_DIR: text({ group: 'Storage', default: '/var/lib/relaybox', description: 'Where rendered configuration, the mail queue, mailboxes and the generated certificate live (a volume in the container).' }).transform((raw, ctx) => {
      const dir = raw.replace(/\/+$/, '');
      // Unix socket paths (queue/private/dovecot-lmtp and Dovecot's base_dir) must fit in 107 bytes.
      if (!isAbsolute(dir) || dir.length > 64 || /[\s,=$"'\\]/.test(dir)) {
        ctx.addIssue({ code: 'custom', message: 'an absolute directory path of at most 64 characters without spaces, commas, quotes, "=" or "$"', input: raw });
        return z.NEVER;
      }
      return dir;
    }),
    MESSAGE_SIZE_LIMIT: text({ group: 'Limits', default: '26214400', description: 'Largest accepted message in bytes (Postfix message_size_limit).' }).transform((raw, ctx) => {
      const value = Number(raw.trim());
      if (!/^\d+$/.test(raw.trim()) || value < 1024 || value > 2 ** 31 - 1) {
        ctx.addIssue({ code: 'custom', message: 'a whole number of bytes from 1024 to 2147483647', input: raw });
        return z.NEVER;
      }
      return value;
    }),
    RECIPIENT_LIMIT: integer({ group: 'Limits', default: '100', description: 'Most recipients per message (Postfix smtpd_recipient_limit); more get 452 4.5.3.' }, 1, 100000, 'recipients'),
    AUTH_RATE_LIMIT: integer({ group: 'Abuse', default: '60', description: 'Most AUTH commands one client address may send per minute on the SMTP ports (Postfix smtpd_client_auth_rate_limit); 0 = no limit.' }, 0, 1000000, 'AUTH commands per minute'),
    AUTH_FAILURE_DELAY: integer({ group: 'Abuse', default: '2', description: "Seconds Dovecot waits before answering a failed authentication (auth_failure_delay)." }, 0, 60, 'seconds'),
    AUTH_BAN_THRESHOLD: integer({ group: 'Abuse', default: '10', description: 'Failed authentications (SMTP or IMAP) from one client address within AUTH_BAN_WINDOW after which that address is refused at connect on every SMTP port for AUTH_BAN_DURATION; 0 = never ban.' }, 0, 1000000, 'failures'),
    AUTH_BAN_WINDOW: duration({ group: 'Abuse', default: '10m', description: 'The window in which AUTH_BAN_THRESHOLD failures lead to a ban.' }, 7 * 86400),
    AUTH_BAN_DURATION: duration({ group: 'Abuse', default: '1h', description: 'How long a banned address stays refused.' }, 30 * 86400),
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
  });

export const envSchema = envVariables
  .superRefine((env, ctx) => {
    const seen = new Set<string>();
    for (const [variable, list] of [['MAIL_USERS', env.MAIL_USERS], ['MAIL_USERS_FILE', env.MAIL_USERS_FILE]] as const) {
      for (const user of list) {
        if (seen.has(user.address)) ctx.addIssue({ code: 'custom', path: [variable], message: `${user.address} is defined more than once; each address once across MAIL_USERS and MAIL_USERS_FILE`, input: '' });
        seen.add(user.address);
      }
    }
    const aliasSeen = new Set<string>();
    const users = new Set([...env.MAIL_USERS, ...env.MAIL_USERS_FILE].map((u) => u.address));
    for (const [variable, list] of [['MAIL_ALIASES', env.MAIL_ALIASES], ['MAIL_ALIASES_FILE', env.MAIL_ALIASES_FILE]] as const) {
      for (const entry of list) {
        if (!env.MAIL_DOMAINS.includes(entry.domain)) ctx.addIssue({ code: 'custom', path: [variable], message: `${entry.alias}: ${entry.domain} is not in MAIL_DOMAINS; aliases are for the local domains`, input: '' });
        if (users.has(entry.alias)) ctx.addIssue({ code: 'custom', path: [variable], message: `${entry.alias} is also a user in MAIL_USERS; an address is either a user or an alias`, input: '' });
        if (aliasSeen.has(entry.alias)) ctx.addIssue({ code: 'custom', path: [variable], message: `${entry.alias} is defined more than once across MAIL_ALIASES and MAIL_ALIASES_FILE`, input: '' });
        aliasSeen.add(entry.alias);
      }
    }
    const both = (a: keyof typeof env, b: keyof typeof env) => {
      if (env[a] && env[b]) ctx.addIssue({ code: 'custom', path: [b], message: `set either ${a} or ${b}, not both`, input: '' });
    };
    both('RELAY_USERNAME', 'RELAY_USERNAME_FILE');
    both('RELAY_PASSWORD', 'RELAY_PASSWORD_FILE');
    both('SELFTEST_PASSWORD', 'SELFTEST_PASSWORD_FILE');
    both('SELFTEST_TOKEN', 'SELFTEST_TOKEN_FILE');
    if (Boolean(env.SELFTEST_USER) !== Boolean(env.SELFTEST_PASSWORD || env.SELFTEST_PASSWORD_FILE)) {
      ctx.addIssue({ code: 'custom', path: [env.SELFTEST_USER ? 'SELFTEST_PASSWORD' : 'SELFTEST_USER'], message: 'SELFTEST_USER and SELFTEST_PASSWORD (or SELFTEST_PASSWORD_FILE) go together; set both or neither', input: '' });
    }
    const token = env.SELFTEST_TOKEN || env.SELFTEST_TOKEN_FILE;
    if (token && token.length < 16) ctx.addIssue({ code: 'custom', path: [env.SELFTEST_TOKEN ? 'SELFTEST_TOKEN' : 'SELFTEST_TOKEN_FILE'], message: 'at least 16 characters (e.g. openssl rand -hex 24)', input: '' });
    const hasUser = Boolean(env.RELAY_USERNAME || env.RELAY_USERNAME_FILE);
    const hasPassword = Boolean(env.RELAY_PASSWORD || env.RELAY_PASSWORD_FILE);
    if (hasUser !== hasPassword) ctx.addIssue({ code: 'custom', path: [hasUser ? 'RELAY_PASSWORD' : 'RELAY_USERNAME'], message: 'RELAY_USERNAME and RELAY_PASSWORD (or their _FILE forms) go together; set both or neither', input: '' });
    if (hasUser && !env.RELAY_HOST) ctx.addIssue({ code: 'custom', path: ['RELAY_HOST'], message: 'required when relay credentials are set: the smarthost as [host]:port', input: '' });
    if (Boolean(env.TLS_CERT_FILE) !== Boolean(env.TLS_KEY_FILE)) {
      ctx.addIssue({ code: 'custom', path: [env.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'], message: 'TLS_CERT_FILE and TLS_KEY_FILE go together; set both or neither', input: '' });
    } else if (env.TLS_CERT_FILE && env.TLS_KEY_FILE && !new X509Certificate(env.TLS_CERT_FILE.pem).checkPrivateKey(createPrivateKey(env.TLS_KEY_FILE.pem))) {
      ctx.addIssue({ code: 'custom', path: ['TLS_KEY_FILE'], message: 'the key does not match the certificate in TLS_CERT_FILE', input: '' });
    }
    for (const [i, a] of LISTENERS.entries()) {
      for (const b of LISTENERS.slice(i + 1)) {
        const [portA, portB] = [env[a.variable], env[b.variable]];
        if (portA !== 0 && portA === portB) ctx.addIssue({ code: 'custom', path: [b.variable], message: `port ${portB} is also ${a.variable}; every enabled listener needs its own port`, input: String(portB) });
      }
    }
  })
  .transform((env) => {
    const token = env.SELFTEST_TOKEN || env.SELFTEST_TOKEN_FILE;
    const relayUsername = env.RELAY_USERNAME || env.RELAY_USERNAME_FILE;
    const relayPassword = env.RELAY_PASSWORD || env.RELAY_PASSWORD_FILE;
    return {
      hostname: env.MAIL_HOSTNAME,
      domains: env.MAIL_DOMAINS,
      users: [...env.MAIL_USERS, ...env.MAIL_USERS_FILE],
      aliases: [...env.MAIL_ALIASES, ...env.MAIL_ALIASES_FILE],
      mailboxQuota: env.MAILBOX_QUOTA,
      relay: env.RELAY_HOST && {
        ...env.RELAY_HOST,
        credentials: relayUsername && relayPassword ? { username: relayUsername, password: relayPassword } : undefined,
      },
      trustedNetworks: env.TRUSTED_NETWORKS,
      tls: env.TLS_CERT_FILE && env.TLS_KEY_FILE ? { certFile: env.TLS_CERT_FILE.path, keyFile: env.TLS_KEY_FILE.path } : undefined,
      ports: Object.fromEntries(LISTENERS.map((row) => [row.name, env[row.variable]])) as Ports,
      bindAddress: env.BIND_ADDRESS,
      stateDir: env.STATE_DIR,
      messageSizeLimit: env.MESSAGE_SIZE_LIMIT,
      recipientLimit: env.RECIPIENT_LIMIT,
      restartBudget: env.RESTART_BUDGET,
      auth: {
        rateLimit: env.AUTH_RATE_LIMIT,
        failureDelaySeconds: env.AUTH_FAILURE_DELAY,
        ban: { threshold: env.AUTH_BAN_THRESHOLD, windowSeconds: env.AUTH_BAN_WINDOW, durationSeconds: env.AUTH_BAN_DURATION },
      },
      log: { level: env.LOG_LEVEL, format: env.LOG_FORMAT },
      selftest: {
        credentials: env.SELFTEST_USER ? { user: env.SELFTEST_USER, password: (env.SELFTEST_PASSWORD || env.SELFTEST_PASSWORD_FILE) ?? '' } : undefined,
        token: token || undefined,
      },
    };
  });

export type Config = z.output<typeof envSchema>;

// Where outgoing mail goes: the smarthost, its credentials, and how its TLS certificate is checked.
import { pemFile, secretFile, take, text } from '../fields.ts';
import { passwordProblem, parseSmarthostList, parseTlsName, usernameProblem, type Smarthost } from '../outbound-values.ts';
import { eitherOr, type Issue, type Values } from './area.ts';

/** verify: certificate chain and name checked (Postfix `secure`); encrypt: TLS, certificate unchecked; may: TLS when offered. */
export const RELAY_TLS_LEVELS = ['verify', 'encrypt', 'may'] as const;
export type RelayTlsLevel = (typeof RELAY_TLS_LEVELS)[number];

export const variables = {
  RELAY_HOST: text({
    group: 'Upstream',
    description:
      "Smarthost for outgoing mail as `[host]:port` (no MX lookup) or `host:port`; or an ordered failover list of up to 5 separated by commas (`[smtp-a.example]:587, [smtp-b.example]:587`): when one does not answer, fails TLS verification or answers 4xx, the next is tried; each is verified like the first, given the same credentials, and named in the log and in relaybox_smarthost_deliveries_total. Port 465 is implicit TLS (TLS from the first byte, RFC 8314); prefix `smtps:` for implicit TLS on another port (`smtps:[smtp.example.com]:2465`); any other port uses STARTTLS; one mode for every smarthost of a list. Both are verified the same way (RELAY_TLS) and get the smarthost's name as SNI. Empty = deliver directly to the recipients' MX hosts.",
  }).transform((raw, ctx) => (raw.trim() === '' ? undefined : take(parseSmarthostList(raw), ctx, raw))),
  RELAY_USERNAME: text({ group: 'Upstream', description: 'SASL user name at the smarthost (no ":" and no whitespace). With credentials set, the smarthost\'s TLS certificate is verified (RELAY_TLS).' }),
  RELAY_USERNAME_FILE: secretFile({ group: 'Upstream', description: 'File holding RELAY_USERNAME.' }),
  RELAY_PASSWORD: text({ group: 'Upstream', description: 'SASL password at the smarthost (taken literally; no leading or trailing whitespace).', secret: true }),
  RELAY_PASSWORD_FILE: secretFile({ group: 'Upstream', description: 'File holding RELAY_PASSWORD (a Docker or Kubernetes secret).' }),
  RELAY_TLS: text({
    group: 'Upstream',
    description:
      "TLS to the smarthost and every relay route. `verify` (the default with credentials): the certificate must chain to a trusted CA (the system's, or RELAY_TLS_CA_FILE) and name the host (RELAY_TLS_NAME), else mail stays queued and the password is never sent. `encrypt`: TLS without checking the certificate, a warned opt-out (anyone on the path can collect the password). `may` (the default without credentials): TLS when offered; refused with credentials.",
  }).transform((raw, ctx) => {
    const value = raw.trim().toLowerCase();
    if (value === '') return undefined;
    const level = RELAY_TLS_LEVELS.find((l) => l === value);
    if (!level) ctx.addIssue({ code: 'custom', message: `one of ${RELAY_TLS_LEVELS.join(', ')}, or empty for the default (verify with credentials, may without)`, input: raw });
    return level;
  }),
  RELAY_TLS_NAME: text({
    group: 'Upstream',
    description:
      "The name RELAY_HOST's certificate must carry when verified (also sent as SNI). Empty = each smarthost's own host (set it when RELAY_HOST is an IP address). With a list of smarthosts: one name for all, or one per smarthost in the same order, separated by commas.",
  }).transform((raw, ctx) => (raw.trim() === '' ? undefined : raw.split(/[\s,]+/).filter((name) => name !== '').map((name) => take(parseTlsName(name), ctx, raw)))),
  RELAY_TLS_CA_FILE: pemFile({ group: 'Upstream', description: "PEM file of the CA(s) that issued the smarthost's certificate, for a private CA; trusted in addition to the system's CAs." }, 'certificate'),
};

type Env = Values<typeof variables>;

const username = (env: Env) => env.RELAY_USERNAME || env.RELAY_USERNAME_FILE;
const password = (env: Env) => env.RELAY_PASSWORD || env.RELAY_PASSWORD_FILE;

export function check(env: Env, issue: Issue): void {
  eitherOr(env, issue, 'RELAY_USERNAME', 'RELAY_USERNAME_FILE');
  eitherOr(env, issue, 'RELAY_PASSWORD', 'RELAY_PASSWORD_FILE');
  const [user, pass] = [username(env), password(env)];
  if (Boolean(user) !== Boolean(pass)) issue(user ? 'RELAY_PASSWORD' : 'RELAY_USERNAME', 'RELAY_USERNAME and RELAY_PASSWORD (or their _FILE forms) go together; set both or neither');
  if (user && !env.RELAY_HOST) issue('RELAY_HOST', 'required when relay credentials are set: the smarthost as [host]:port');
  const userProblem = user ? usernameProblem(user) : undefined;
  if (userProblem) issue(env.RELAY_USERNAME ? 'RELAY_USERNAME' : 'RELAY_USERNAME_FILE', `the user name ${userProblem}`);
  const passProblem = pass ? passwordProblem(pass) : undefined;
  if (passProblem) issue(env.RELAY_PASSWORD ? 'RELAY_PASSWORD' : 'RELAY_PASSWORD_FILE', `the password ${passProblem}`);
  if (env.RELAY_TLS_NAME && !env.RELAY_HOST) issue('RELAY_TLS_NAME', "names RELAY_HOST's certificate: set RELAY_HOST too, or leave RELAY_TLS_NAME empty");
  const [names, hops] = [env.RELAY_TLS_NAME?.length ?? 0, env.RELAY_HOST?.length ?? 0];
  if (names > 1 && hops > 0 && names !== hops) issue('RELAY_TLS_NAME', `${names} names for ${hops} smarthosts in RELAY_HOST; give one name for all, or one per smarthost in RELAY_HOST's order`);
}

/** A smarthost of RELAY_HOST with the name its certificate must carry (and the SNI sent). */
export type RelayHop = Smarthost & { tlsName: string };

function hopsOf(env: Env): RelayHop[] {
  const names = env.RELAY_TLS_NAME ?? [];
  return (env.RELAY_HOST ?? []).map((hop, index) => ({ ...hop, tlsName: (names.length === 1 ? names[0] : names[index]) ?? hop.host }));
}

export function toConfig(env: Env) {
  const [user, pass] = [username(env), password(env)];
  return {
    /** RELAY_HOST: its smarthosts in failover order (one TLS mode for all), and the credentials each is given. */
    relay: env.RELAY_HOST && {
      hops: hopsOf(env),
      implicitTls: env.RELAY_HOST.some((hop) => hop.implicitTls),
      credentials: user && pass ? { username: user, password: pass } : undefined,
    },
    relayTls: {
      /** RELAY_TLS as given; unset = verify for a nexthop with credentials, may without. */
      level: env.RELAY_TLS,
      caFile: env.RELAY_TLS_CA_FILE?.path,
    },
  };
}

/** Settings that work but weaken what relaybox promises: logged at every start and by check-config. */
export function warnings(config: ReturnType<typeof toConfig>): string[] {
  return config.relayTls.level === 'encrypt'
    ? ["RELAY_TLS=encrypt: the smarthost's certificate is not verified, so anyone who can intercept the connection can collect the relay password; use verify (with RELAY_TLS_CA_FILE for a private CA)"]
    : [];
}

// Who may relay without AUTH, and the TLS certificate every listener serves.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { envDocs, pemFile, take, text } from '../fields.ts';
import { MIN_TRUSTED_PREFIX, parseTrustedNetwork, splitList } from '../values.ts';
import type { Issue, Values } from './area.ts';

export const variables = {
  TRUSTED_NETWORKS: text({
    group: 'Access',
    description: `Comma-separated CIDRs whose clients may relay through port 25 without AUTH. Empty = nobody. At most a /${MIN_TRUSTED_PREFIX[4]} (IPv4) or /${MIN_TRUSTED_PREFIX[6]} (IPv6) each: wider is refused as an open relay.`,
    list: true,
  }).transform((raw, ctx) => splitList(raw).map((item) => take(parseTrustedNetwork(item), ctx, item))),
  TRUSTED_NETWORKS_INCLUDE_GATEWAY: z
    .enum(['no', 'yes'], { error: 'no or yes' })
    .default('no')
    .register(envDocs, {
      group: 'Access',
      default: 'no',
      description: "`no`: a TRUSTED_NETWORKS entry that contains this container's default gateway is refused at start (exit 2): behind Docker's userland proxy every Internet client arrives from the gateway, so port 25 would relay for all of them. `yes`: allowed, with a warning at every start; only when clients reach relaybox by NAT or routing that keeps their own addresses.",
    }),
  TLS_CERT_FILE: pemFile({ group: 'TLS', description: 'PEM certificate (chain) for SMTP and IMAP. Unset: a self-signed certificate for MAIL_HOSTNAME is generated once into STATE_DIR/tls and reused, with a warning at every start.' }, 'certificate'),
  TLS_KEY_FILE: pemFile({ group: 'TLS', description: 'PEM private key matching TLS_CERT_FILE.' }, 'key'),
};

type Env = Values<typeof variables>;

export function check(env: Env, issue: Issue): void {
  if (Boolean(env.TLS_CERT_FILE) !== Boolean(env.TLS_KEY_FILE)) {
    issue(env.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE', 'TLS_CERT_FILE and TLS_KEY_FILE go together; set both or neither');
  } else if (env.TLS_CERT_FILE && env.TLS_KEY_FILE && !new X509Certificate(env.TLS_CERT_FILE.pem).checkPrivateKey(createPrivateKey(env.TLS_KEY_FILE.pem))) {
    issue('TLS_KEY_FILE', 'the key does not match the certificate in TLS_CERT_FILE');
  }
}

export function toConfig(env: Env) {
  return {
    trustedNetworks: env.TRUSTED_NETWORKS,
    trustedGatewayAllowed: env.TRUSTED_NETWORKS_INCLUDE_GATEWAY === 'yes',
    tls: env.TLS_CERT_FILE && env.TLS_KEY_FILE ? { certFile: env.TLS_CERT_FILE.path, keyFile: env.TLS_KEY_FILE.path } : undefined,
  };
}

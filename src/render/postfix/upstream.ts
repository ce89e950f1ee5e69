// Outgoing mail: the smarthost and the relay routes, TLS to each (a policy row per nexthop) and the
// credentials each gets.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { table, type Setting } from './format.ts';
import { directLevel, directPolicyMaps, directVerifies } from './direct.ts';

type Config = RenderInput['config'];
type Level = 'verify' | 'encrypt' | 'may';

/** relaybox's names for Postfix's smtp_tls_security_level values. */
const POSTFIX_LEVEL: Record<Level, string> = { verify: 'secure', encrypt: 'encrypt', may: 'may' };
const STRENGTH: Record<Level, number> = { may: 0, encrypt: 1, verify: 2 };

/** Where smtp (chrooted in the queue directory) finds the CA links the supervisor copies there. */
export const CHROOT_CA_PATH = '/etc/ssl/certs';

/** `[host]:port` or `host:port`, as relayhost and the maps keyed by it write it. */
export function nexthop(relay: { host: string; port: number; noMx: boolean }): string {
  return `${relay.noMx ? `[${relay.host}]` : relay.host}:${relay.port}`;
}

/** RELAY_TLS, or its default: verify where credentials are sent, may elsewhere. */
function levelFor(config: Config, withCredentials: boolean): Level {
  return config.relayTls.level ?? (withCredentials ? 'verify' : 'may');
}

interface Hop {
  nexthop: string;
  level: Level;
  /** The name the certificate must carry when verified. */
  name: string;
}

/** Every smarthost (RELAY_HOST, then each route's), once per nexthop, with the strongest level any use asks for. */
export function relayHops(config: Config): Hop[] {
  const hops = new Map<string, Hop>();
  const add = (hop: Hop) => {
    const known = hops.get(hop.nexthop);
    if (!known || STRENGTH[hop.level] > STRENGTH[known.level]) hops.set(hop.nexthop, { ...hop, name: known?.name ?? hop.name });
  };
  if (config.relay) add({ nexthop: nexthop(config.relay), level: levelFor(config, Boolean(config.relay.credentials)), name: config.relayTls.name ?? config.relay.host });
  for (const route of config.relayRoutes) add({ nexthop: nexthop(route), level: levelFor(config, Boolean(route.credentials)), name: route.host });
  return [...hops.values()];
}

function policyRow(hop: Hop): [string, string] {
  return [hop.nexthop, hop.level === 'verify' ? `secure match=${hop.name}` : POSTFIX_LEVEL[hop.level]];
}

export function upstreamSettings({ config }: RenderInput, paths: StatePaths): Setting[] {
  const relay = config.relay;
  const hops = relayHops(config);
  const routeCredentials = config.relayRoutes.some((route) => route.credentials);
  const anyCredentials = Boolean(relay?.credentials) || routeCredentials;
  const verifying = hops.some((hop) => hop.level === 'verify') || directVerifies(config);
  const policyMaps = [...(hops.length > 0 ? [`texthash:${paths.relayTlsPolicy}`] : []), ...directPolicyMaps(config, paths)];
  const caFile = config.relayTls.caFile ?? config.outbound.caFile;
  return [
    ['relayhost', relay ? nexthop(relay) : ''],
    // The policy map decides per smarthost; this default also covers a smarthost it would miss.
    // Without a smarthost: OUTBOUND_TLS (postfix/direct.ts).
    ['smtp_tls_security_level', relay ? POSTFIX_LEVEL[levelFor(config, Boolean(relay.credentials))] : directLevel(config)],
    policyMaps.length > 0 && ['smtp_tls_policy_maps', policyMaps.join(', ')],
    // A hashed CA directory (looked up per certificate, inside the chroot), never the system bundle
    // as a CAfile: parsing the bundle costs each new smtp process ~25 ms of CPU (README, Performance).
    verifying && ['smtp_tls_CApath', CHROOT_CA_PATH],
    Boolean(caFile) && ['smtp_tls_CAfile', caFile ?? ''],
    ['smtp_tls_mandatory_protocols', '>=TLSv1.2'],
    ['smtp_tls_loglevel', 1],
    ['smtp_tls_session_cache_database', ''],
    config.relayRoutes.length > 0 && ['sender_dependent_relayhost_maps', `texthash:${paths.senderRelayMap}`],
    ...(anyCredentials
      ? ([
          ['smtp_sasl_auth_enable', 'yes'],
          ['smtp_sasl_password_maps', `texthash:${paths.relayPasswordMap}`],
          ['smtp_sasl_security_options', 'noanonymous'],
          ['smtp_sasl_tls_security_options', 'noanonymous'],
        ] as Setting[])
      : []),
    // Route credentials are keyed by sender; RELAY_HOST's by its nexthop (bounces and notices too).
    routeCredentials && ['smtp_sender_dependent_authentication', 'yes'],
  ].filter((setting): setting is Setting => setting !== false);
}

export function upstreamFiles({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  const relay = config.relay;
  const hops = relayHops(config);
  const passwords: Array<[string, string]> = [
    ...(relay?.credentials ? [[nexthop(relay), `${relay.credentials.username}:${relay.credentials.password}`] as [string, string]] : []),
    ...config.relayRoutes.flatMap((route): Array<[string, string]> => (route.credentials ? [[route.sender, `${route.credentials.username}:${route.credentials.password}`]] : [])),
  ];
  return [
    ...(passwords.length > 0 ? [{ path: paths.relayPasswordMap, content: table(passwords), mode: 0o600 }] : []),
    ...(hops.length > 0 ? [{ path: paths.relayTlsPolicy, content: table(hops.map(policyRow)), mode: 0o644 }] : []),
    ...(config.relayRoutes.length > 0 ? [{ path: paths.senderRelayMap, content: table(config.relayRoutes.map((route): [string, string] => [route.sender, nexthop(route)])), mode: 0o644 }] : []),
  ];
}

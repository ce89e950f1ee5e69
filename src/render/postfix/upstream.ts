// Outgoing mail: the smarthost and the relay routes, TLS to each (a policy row per nexthop) and the
// credentials each gets. A smarthost on 465 (or `smtps:`) gets the relay-smtps transport: TLS from
// the first byte, verified exactly like STARTTLS; every verified name is also sent as SNI.
import { isIP } from 'node:net';
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { table, type Setting } from './format.ts';
import { directLevel, directPolicyMaps, directVerifies } from './direct.ts';
import { routeHops } from '../../config/outbound-values.ts';

type Config = RenderInput['config'];
type Level = 'verify' | 'encrypt' | 'may';

/** relaybox's names for Postfix's smtp_tls_security_level values. */
const POSTFIX_LEVEL: Record<Level, string> = { verify: 'secure', encrypt: 'encrypt', may: 'may' };
const STRENGTH: Record<Level, number> = { may: 0, encrypt: 1, verify: 2 };

/** Where smtp (chrooted in the queue directory) finds the CA links the supervisor copies there. */
export const CHROOT_CA_PATH = '/etc/ssl/certs';

/** The master.cf smtp client that wraps the connection in TLS from the first byte (master-cf.ts). */
export const IMPLICIT_TLS_TRANSPORT = 'relay-smtps';

/** `[host]:port` or `host:port`, as relayhost and the maps keyed by it write it. */
export function nexthop(relay: { host: string; port: number; noMx: boolean }): string {
  return `${relay.noMx ? `[${relay.host}]` : relay.host}:${relay.port}`;
}

/**
 * RELAY_TLS, or its default: verify where credentials are sent, may elsewhere. Implicit TLS has no
 * plaintext to fall back to: at least encrypt (Postfix's wrappermode requires it).
 */
function levelFor(config: Config, withCredentials: boolean, implicitTls = false): Level {
  const level = config.relayTls.level ?? (withCredentials ? 'verify' : 'may');
  return implicitTls && level === 'may' ? 'encrypt' : level;
}

interface Hop {
  nexthop: string;
  level: Level;
  /** The name the certificate must carry when verified, and the SNI sent. */
  name: string;
}

/** The longest failover list (RELAY_HOST's or a route's). */
function longestList(config: Config): number {
  return Math.max(config.relay?.hops.length ?? 0, ...config.relayRoutes.map((route) => routeHops(route).length));
}

/** Whether routes need sender_dependent_default_transport_maps: implicit TLS somewhere, or a route's failover list. */
function routeTransports(config: Config): boolean {
  return config.relayRoutes.length > 0 && (implicitTlsUsed(config) || config.relayRoutes.some((route) => (route.fallbacks?.length ?? 0) > 0));
}

/** relayhost's value: the smarthosts in failover order. */
export function relayhostValue(hops: ReadonlyArray<{ host: string; port: number; noMx: boolean }>): string {
  return hops.map(nexthop).join(', ');
}

/** Whether any smarthost (RELAY_HOST or a route) is reached with implicit TLS. */
export function implicitTlsUsed(config: Config): boolean {
  return Boolean(config.relay?.implicitTls) || config.relayRoutes.some((route) => route.implicitTls);
}

/** The transport (and nexthop) a smarthost is reached by: smtp with STARTTLS, or relay-smtps. */
export function transportFor(relay: { host: string; port: number; noMx: boolean; implicitTls: boolean }): string {
  return `${relay.implicitTls ? IMPLICIT_TLS_TRANSPORT : 'smtp'}:${nexthop(relay)}`;
}

/** Every smarthost (RELAY_HOST, then each route's), once per nexthop, with the strongest level any use asks for. */
export function relayHops(config: Config): Hop[] {
  const hops = new Map<string, Hop>();
  const add = (hop: Hop) => {
    const known = hops.get(hop.nexthop);
    if (!known || STRENGTH[hop.level] > STRENGTH[known.level]) hops.set(hop.nexthop, { ...hop, name: known?.name ?? hop.name });
  };
  const { relay } = config;
  for (const hop of relay?.hops ?? []) add({ nexthop: nexthop(hop), level: levelFor(config, Boolean(relay?.credentials), hop.implicitTls), name: hop.tlsName });
  for (const route of config.relayRoutes) for (const hop of routeHops(route)) add({ nexthop: nexthop(hop), level: levelFor(config, Boolean(route.credentials), hop.implicitTls), name: hop.host });
  return [...hops.values()];
}

/**
 * A TLS policy row. The name sent as SNI is the one verified (RELAY_TLS_NAME for an IP-literal
 * smarthost), so a front end that picks its certificate by SNI presents the right one. An IP address
 * is never sent as SNI (RFC 6066), which is why smtp_tls_servername stays unset: Postfix 3.7's
 * `hostname` sends an IP-literal smarthost's address as the name (seen in the tests).
 */
function policyRow(hop: Hop): [string, string] {
  const sni = isIP(hop.name) === 0 ? ` servername=${hop.name}` : '';
  return [hop.nexthop, hop.level === 'verify' ? `secure match=${hop.name}${sni}` : `${POSTFIX_LEVEL[hop.level]}${sni}`];
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
    // Several smarthosts: Postfix (3.5+) tries them in order, the next when one does not answer, fails TLS or answers 4xx.
    ['relayhost', relay ? relayhostValue(relay.hops) : ''],
    // A hop that answers 4xx after EHLO and TLS counts as a session; let every hop have its turn (default 2).
    longestList(config) > 2 && ['smtp_mx_session_limit', longestList(config)],
    // Everything for RELAY_HOST (bounces and notices too) through the implicit-TLS client when it asks for one.
    Boolean(relay?.implicitTls) && ['default_transport', IMPLICIT_TLS_TRANSPORT],
    // The policy map decides per smarthost; this default also covers a smarthost it would miss.
    // Without a smarthost: OUTBOUND_TLS (postfix/direct.ts).
    ['smtp_tls_security_level', relay ? POSTFIX_LEVEL[levelFor(config, Boolean(relay.credentials), relay.implicitTls)] : directLevel(config)],
    policyMaps.length > 0 && ['smtp_tls_policy_maps', policyMaps.join(', ')],
    // A hashed CA directory (looked up per certificate, inside the chroot), never the system bundle
    // as a CAfile: parsing the bundle costs each new smtp process ~25 ms of CPU (README, Performance).
    verifying && ['smtp_tls_CApath', CHROOT_CA_PATH],
    Boolean(caFile) && ['smtp_tls_CAfile', caFile ?? ''],
    ['smtp_tls_mandatory_protocols', '>=TLSv1.2'],
    ['smtp_tls_loglevel', 1],
    ['smtp_tls_session_cache_database', ''],
    config.relayRoutes.length > 0 && ['sender_dependent_relayhost_maps', `texthash:${paths.senderRelayMap}`],
    // A route's transport as well as its nexthop, so a route can be on 465 while RELAY_HOST uses STARTTLS (or the reverse).
    // Also for a route's failover list: Postfix takes a list of nexthops from a transport, not from sender_dependent_relayhost_maps.
    routeTransports(config) && ['sender_dependent_default_transport_maps', `texthash:${paths.senderTransportMap}`],
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
    // Keyed by each hop's nexthop: Postfix looks up the one it is connected to, so every hop gets them.
    ...(relay?.credentials ? relay.hops.map((hop): [string, string] => [nexthop(hop), `${relay.credentials!.username}:${relay.credentials!.password}`]) : []),
    ...config.relayRoutes.flatMap((route): Array<[string, string]> => (route.credentials ? [[route.sender, `${route.credentials.username}:${route.credentials.password}`]] : [])),
  ];
  return [
    ...(passwords.length > 0 ? [{ path: paths.relayPasswordMap, content: table(passwords), mode: 0o600 }] : []),
    ...(hops.length > 0 ? [{ path: paths.relayTlsPolicy, content: table(hops.map(policyRow)), mode: 0o644 }] : []),
    ...(config.relayRoutes.length > 0 ? [{ path: paths.senderRelayMap, content: table(config.relayRoutes.map((route): [string, string] => [route.sender, relayhostValue(routeHops(route))])), mode: 0o644 }] : []),
    ...(routeTransports(config)
      ? [{ path: paths.senderTransportMap, content: table(config.relayRoutes.map((route): [string, string] => [route.sender, `${transportFor(route).split(':')[0]}:${relayhostValue(routeHops(route))}`])), mode: 0o644 }]
      : []),
  ];
}

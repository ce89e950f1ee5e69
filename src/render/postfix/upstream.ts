// Outgoing mail: the smarthost, TLS to it and the credentials it gets.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { table, type Setting } from './format.ts';

/** `[host]:port` or `host:port`, as relayhost and the maps keyed by it write it. */
export function nexthop(relay: NonNullable<RenderInput['config']['relay']>): string {
  return `${relay.noMx ? `[${relay.host}]` : relay.host}:${relay.port}`;
}

export function upstreamSettings({ config }: RenderInput, paths: StatePaths): Setting[] {
  const relay = config.relay;
  const credentials = relay?.credentials;
  return [
    ['relayhost', relay ? nexthop(relay) : ''],
    ['smtp_tls_security_level', credentials ? 'encrypt' : 'may'],
    ['smtp_tls_mandatory_protocols', '>=TLSv1.2'],
    // No CA bundle: `may`/`encrypt` do not verify the upstream's certificate, and parsing the bundle
    // cost every smtp process measurable CPU per message (BENCHMARKS.md).
    ['smtp_tls_loglevel', 1],
    ['smtp_tls_session_cache_database', ''],
    ...(credentials
      ? ([
          ['smtp_sasl_auth_enable', 'yes'],
          ['smtp_sasl_password_maps', `texthash:${paths.relayPasswordMap}`],
          ['smtp_sasl_security_options', 'noanonymous'],
          ['smtp_sasl_tls_security_options', 'noanonymous'],
        ] as Setting[])
      : []),
  ];
}

export function upstreamFiles({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  const relay = config.relay;
  const credentials = relay?.credentials;
  if (!relay || !credentials) return [];
  return [{ path: paths.relayPasswordMap, content: table([[nexthop(relay), `${credentials.username}:${credentials.password}`]]), mode: 0o600 }];
}

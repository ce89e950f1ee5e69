// Direct delivery to the recipients' MX hosts: DANE through the validating resolver, OUTBOUND_TLS
// as the default level, TLS_POLICY rows per destination and the supervisor's MTA-STS socketmap.
// Nothing here applies with RELAY_HOST (everything goes to the smarthost, upstream.ts).
import type { PolicyLevel } from '../../config/areas/direct.ts';
import { inChroot, type StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { table, type Setting } from './format.ts';

type Config = RenderInput['config'];

/** TLS_POLICY levels as Postfix policy-table values; `verify` checks the chain and the domain's name. */
const POLICY_ROW: Record<PolicyLevel, string> = { dane: 'dane', verify: 'secure', encrypt: 'encrypt', may: 'may', none: 'none' };

const direct = (config: Config) => !config.relay && config.role !== 'mailbox';

/** Postfix's smtp_tls_security_level for mail that no policy row covers. */
export function directLevel(config: Config): string {
  return config.outbound.level;
}

/** The policy tables direct delivery consults after the smarthosts' rows: TLS_POLICY, then MTA-STS. */
export function directPolicyMaps(config: Config, paths: StatePaths): string[] {
  if (!direct(config)) return [];
  return [
    ...(config.outbound.policy.length > 0 ? [`texthash:${paths.directTlsPolicy}`] : []),
    // Relative to the queue directory: smtp looks it up from inside its chroot.
    ...(config.outbound.mtaSts ? [`socketmap:unix:${inChroot(paths, paths.mtaStsSocket).replace(/^\//, '')}:postfix`] : []),
  ];
}

/** Whether direct delivery may verify a certificate chain (TLS_POLICY verify, MTA-STS). */
export function directVerifies(config: Config): boolean {
  return direct(config) && (config.outbound.mtaSts || config.outbound.policy.some(({ level }) => level === 'verify'));
}

export function directSettings({ config }: RenderInput): Setting[] {
  if (!direct(config)) return [];
  const dane = config.outbound.level === 'dane' || config.outbound.policy.some(({ level }) => level === 'dane');
  return [
    // The AD bit of the resolver's answers decides what is DNSSEC-secure (TLSA records, MX names).
    ...(dane || config.resolver ? ([['smtp_dns_support_level', 'dnssec']] as Setting[]) : []),
    // TLSA-less MX hosts of a signed domain: opportunistic TLS, with DANE wherever TLSA exists.
    ...(dane ? ([['smtp_tls_dane_insecure_mx_policy', 'dane']] as Setting[]) : []),
  ];
}

export function directFiles({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  if (!direct(config) || config.outbound.policy.length === 0) return [];
  return [{ path: paths.directTlsPolicy, content: table(config.outbound.policy.map(({ destination, level }): [string, string] => [destination, POLICY_ROW[level]])), mode: 0o644 }];
}

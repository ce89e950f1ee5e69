// SRS for forwarded mail (the supervisor's socketmap, srs/service.ts). Mail taken on port 25 passes
// through cleanup-inbound, which rewrites a foreign envelope sender to SRS0=...@MAIL_HOSTNAME: the
// forward then passes SPF at its destination, its bounces come back to us, and a sender claimed by
// an unauthenticated client no longer matches RELAY_ROUTES (routes and their credentials are for
// authenticated users and TRUSTED_NETWORKS). On only while some alias, catch-all or the postmaster
// leads outside the local domains: otherwise nothing taken on 25 leaves.
// Senders in the local domains are not rewritten (TRUSTED_NETWORKS send as them), so a route for
// one of those is also guarded on the port-25 listener: claimed by an untrusted client, refused.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, type Setting } from './format.ts';
import { postmasterAddress } from './maps.ts';

/** The cleanup service of the port-25 listener while SRS is on. */
export const INBOUND_CLEANUP = 'cleanup-inbound';

/** The socketmap as Postfix's chrooted processes reach it (= paths.srsSocket). */
const SRS_MAP = 'socketmap:unix:private/relaybox-srs';

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** Forwarding targets outside the local domains (aliases, catch-alls, the postmaster). */
export function outsideTargets(input: RenderInput): string[] {
  const local = new Set(input.config.domains.map((d) => d.toLowerCase()));
  const postmaster = postmasterAddress(input);
  const targets = [...input.config.aliases.flatMap((alias) => alias.targets), ...(postmaster ? [postmaster] : [])];
  return [...new Set(targets.filter((target) => target.includes('@') && !local.has(domainOf(target))))];
}

export function srsOn(input: RenderInput): boolean {
  return input.config.role !== 'mailbox' && outsideTargets(input).length > 0;
}

/**
 * main.cf: bounces to our SRS addresses accepted (valid ones only) and sent back to the original
 * sender; and a local mailbox that gets the same message sees the original sender as Return-Path
 * (the LMTP client undoes the rewrite: SRS is for mail that leaves).
 */
export function srsSettings(input: RenderInput): { aliasMaps: string[]; settings: Setting[] } {
  if (!srsOn(input)) return { aliasMaps: [], settings: [] };
  const { hostname, domains } = input.config;
  const inMailboxDomain = domains.map((d) => d.toLowerCase()).includes(hostname.toLowerCase());
  const settings: Setting[] = [['lmtp_generic_maps', `${SRS_MAP}:reverse`]];
  if (!inMailboxDomain) settings.unshift(['virtual_alias_domains', hostname]);
  return { aliasMaps: [`${SRS_MAP}:reverse`], settings };
}

/** Route keys (`@domain`, `user@domain`) in the local domains: SRS leaves those senders alone. */
function localRouteKeys(input: RenderInput): string[] {
  const local = new Set(input.config.domains.map((d) => d.toLowerCase()));
  return input.config.relayRoutes.map((route) => route.sender).filter((sender) => local.has(domainOf(sender)));
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * master.cf: the port-25 listener's own cleanup, rewriting the envelope sender only (never a
 * header); and a routed sender of a local domain refused from a client outside TRUSTED_NETWORKS
 * (at end of data, where no other restriction of port 25 is set).
 */
export function inboundListenerOptions(input: RenderInput, paths: StatePaths): string[] {
  if (!srsOn(input)) return [];
  const guard = localRouteKeys(input).length > 0 ? [`smtpd_end_of_data_restrictions=permit_mynetworks,check_sender_access,regexp:${paths.routeSenders}`] : [];
  return [`cleanup_service_name=${INBOUND_CLEANUP}`, ...guard];
}

/** The regexp access table of those senders: exact addresses, and whole domains (no subdomains). */
export function srsFiles(input: RenderInput, paths: StatePaths): RenderedFile[] {
  const keys = srsOn(input) ? localRouteKeys(input) : [];
  if (keys.length === 0) return [];
  const rows = keys.map((key) => `/${key.startsWith('@') ? '' : '^'}${escape(key)}$/ REJECT 5.7.1 this sender is relayed with its own credentials: send as it through submission (587/465) with AUTH\n`);
  return [{ path: paths.routeSenders, content: `${HEADER}${rows.join('')}`, mode: 0o644 }];
}

export const inboundCleanupServiceOptions = [`sender_canonical_maps=${SRS_MAP}:forward`, 'sender_canonical_classes=envelope_sender'];

// The envelope rules every SMTP listener shares: ASCII addresses only (relaybox does not offer
// SMTPUTF8, because Dovecot 2.3's LMTP cannot take it and a smarthost may not either: such mail
// would be accepted and then bounced), and on port 25 no unauthenticated sender in a local domain.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, table, type Setting } from './format.ts';

const NON_ASCII_REFUSAL = '553 5.6.7 Non-ASCII addresses are not accepted here (no SMTPUTF8)';
const LOCAL_SENDER_REFUSAL = '550 5.7.1 A sender in this domain must authenticate (port 587 or 465)';

/** Refuses an envelope address with any byte outside printable ASCII (Postfix runs with LANG=C). */
export function asciiCheck(kind: 'sender' | 'recipient', paths: StatePaths): string {
  return `check_${kind}_access regexp:${paths.asciiAddresses}`;
}

/** The domains whose envelope senders port 25 refuses unless the client is trusted: ours and the host name's. */
export function localSenderDomains({ config }: RenderInput): string[] {
  return [...new Set([...config.domains, config.hostname].map((domain) => domain.toLowerCase()))];
}

/** main.cf: port 25's sender restrictions (the submission ports set their own in master.cf). */
export function inboundSenderRestrictions(input: RenderInput, paths: StatePaths): string {
  const trusted = input.config.trustedNetworks.length > 0 ? ['permit_mynetworks'] : [];
  return [asciiCheck('sender', paths), ...trusted, `check_sender_access texthash:${paths.localSenders}`].join(', ');
}

export function envelopeSettings(input: RenderInput, paths: StatePaths): Setting[] {
  return [
    ['smtputf8_enable', 'no'],
    ['smtpd_sender_restrictions', inboundSenderRestrictions(input, paths)],
    // Message-ID and Date (and a full From:) for every submitter and trusted client, not only for
    // clients on relaybox's own addresses (RFC 6409 8.3; receivers refuse mail without a Message-ID).
    ['local_header_rewrite_clients', 'permit_inet_interfaces, permit_mynetworks, permit_sasl_authenticated'],
  ];
}

export function envelopeFiles(input: RenderInput, paths: StatePaths): RenderedFile[] {
  return [
    { path: paths.asciiAddresses, content: `${HEADER}!/^[[:print:]]*$/ ${NON_ASCII_REFUSAL}\n`, mode: 0o644 },
    { path: paths.localSenders, content: table(localSenderDomains(input).map((domain) => [domain, LOCAL_SENDER_REFUSAL])), mode: 0o644 },
  ];
}

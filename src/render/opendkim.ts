// Pure renderer: Config -> OpenDKIM's configuration, key table and signing table. OpenDKIM signs
// only; Postfix attaches it to the submission ports and to TRUSTED_NETWORKS clients on port 25.
import type { StatePaths } from './paths.ts';
import type { DkimKey, RenderInput, RenderedFile } from './types.ts';

const HEADER = '# Rendered by relaybox from the environment at every start; edits here are overwritten.\n';

const keyName = (domain: string, selector: string) => `${selector}._domainkey.${domain}`;

/**
 * The header fields a reader sees. Each is signed once more than it occurs (an empty instance when
 * absent), so a copy added after signing (a second Subject: or From: above the signed one, which most
 * readers show) breaks the signature. OpenDKIM oversigns only fields it signs, so every one is in
 * SIGNED_HEADERS too.
 */
export const OVERSIGNED_HEADERS = ['From', 'Sender', 'Reply-To', 'To', 'Cc', 'Subject', 'Date', 'Message-ID', 'In-Reply-To', 'References', 'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding', 'List-Id', 'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Post', 'List-Help', 'List-Subscribe', 'List-Owner', 'List-Archive'];

/** RFC 6376 §5.4.1's recommended fields (OpenDKIM's default), plus List-Unsubscribe-Post (RFC 8058). */
export const SIGNED_HEADERS = [...OVERSIGNED_HEADERS, 'Content-ID', 'Content-Description', 'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc', 'Resent-Message-ID'];

export function renderOpendkimConf({ config }: RenderInput, paths: StatePaths): string {
  // Postfix hands its own mail (bounces, notices: non_smtpd_milters) over as from 127.0.0.1.
  const internal = config.trustedNetworks.length > 0 ? ['127.0.0.1', '::1', ...config.trustedNetworks.map(({ address, prefix }) => `${address}/${prefix}`)] : [];
  return `${HEADER}Mode s
Socket local:${paths.opendkimSocket}
UMask 007
PidFile ${paths.opendkimPid}
# Started as root, it runs as opendkim with group postfix, so Postfix's smtpd may use the socket.
UserID opendkim:postfix
# OpenDKIM logs to syslog only; Postfix logs each signature it adds (milter_header_checks).
Syslog no
KeyTable file:${paths.opendkimKeyTable}
SigningTable refile:${paths.opendkimSigningTable}
# Every selector of a domain signs (rotation: old and new side by side).
MultipleSignatures yes
# Authenticated sessions are signed; unauthenticated ones only from these (Postfix's own mail, TRUSTED_NETWORKS).
${internal.length > 0 ? `InternalHosts csl:${internal.join(',')}` : '# InternalHosts: the default, 127.0.0.1 (Postfix\'s own mail; Postfix attaches no signer to other unauthenticated clients)'}
Canonicalization relaxed/relaxed
# The key is chosen by the header From: alone (which the supervisor's milter has bound to the login).
SenderHeaders From
SignHeaders ${SIGNED_HEADERS.join(',')}
OversignHeaders ${OVERSIGNED_HEADERS.join(',')}
SignatureAlgorithm rsa-sha256
# The supervisor checks and owns the key files (STATE_DIR may live under a world-writable /tmp in tests).
RequireSafeKeys no
# A key that cannot be loaded tempfails (451) whatever this says; this covers everything else.
On-Default tempfail
`;
}

/**
 * Bounces and notices come from MAILER-DAEMON@MAIL_HOSTNAME: signed with the keys of the signing
 * domain the host name is in (aligned for DMARC), or else of the first signing domain.
 */
function hostRows(hostname: string, keys: DkimKey[]): string[] {
  const domains = [...new Set(keys.map((k) => k.domain))];
  if (domains.includes(hostname)) return [];
  const parent = domains.filter((d) => hostname.endsWith(`.${d}`)).sort((a, b) => b.length - a.length)[0] ?? domains[0];
  return keys.filter((k) => k.domain === parent).map((k) => `*@${hostname} ${keyName(k.domain, k.selector)}\n`);
}

export function renderOpendkim(input: RenderInput, paths: StatePaths): RenderedFile[] {
  if (!input.config.dkim) return [];
  const keys = input.dkimKeys;
  return [
    { path: paths.opendkimConf, content: renderOpendkimConf(input, paths), mode: 0o644 },
    { path: paths.opendkimKeyTable, content: `${HEADER}${keys.map((k) => `${keyName(k.domain, k.selector)} ${k.domain}:${k.selector}:${k.path}\n`).join('')}`, mode: 0o644 },
    { path: paths.opendkimSigningTable, content: `${HEADER}${keys.map((k) => `*@${k.domain} ${keyName(k.domain, k.selector)}\n`).join('')}${hostRows(input.config.hostname, keys).join('')}`, mode: 0o644 },
  ];
}

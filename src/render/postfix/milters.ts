// Milters: the supervisor checks the header From: of what authenticated users send (refused when
// it is not theirs); OpenDKIM signs what authenticated users and TRUSTED_NETWORKS send; rspamd checks what
// everyone else sends to port 25. A milter that does not answer means 451, never unchecked mail.
import { inChroot, type StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, type Setting } from './format.ts';
import { CERTIFICATE_MILTER_MACROS } from './client-certs.ts';

const signer = (paths: StatePaths) => `unix:${inChroot(paths, paths.opendkimSocket)}`;
/** The header From: check (abuse/header-from-milter.ts): first, so a message it refuses is never signed. */
const headerFrom = (paths: StatePaths) => `unix:${inChroot(paths, paths.headerFromMilterSocket)}`;
const filter = (paths: StatePaths) => `unix:${inChroot(paths, paths.rspamdSocket)}`;

export function milterSettings({ config }: RenderInput, paths: StatePaths): Setting[] {
  return [
    ['milter_default_action', 'tempfail'],
    ['milter_protocol', 6],
    ...(config.clientCerts ? ([['milter_mail_macros', CERTIFICATE_MILTER_MACROS]] as Setting[]) : []),
    // What relaybox generates itself (bounces, delay notices, postmaster notices) is signed too.
    ...(config.dkim ? ([['non_smtpd_milters', signer(paths)], ['internal_mail_filter_classes', 'bounce, notify']] as Setting[]) : []),
    // Nothing else reaches the signer without SMTP: no local user may inject mail with sendmail.
    ['authorized_submit_users', 'root'],
    // Each signature OpenDKIM adds is logged by Postfix (OpenDKIM itself logs to syslog only).
    ...(config.dkim ? ([['milter_header_checks', `regexp:${paths.milterHeaderChecks}`]] as Setting[]) : []),
  ];
}

/** master.cf options of an SMTP listener by role. */
export function milterOptions(role: 'inbound' | 'submission', { config }: RenderInput, paths: StatePaths): string[] {
  if (role === 'submission') return [`smtpd_milters=${[headerFrom(paths), ...(config.dkim ? [signer(paths)] : [])].join(',')}`];
  return [
    `smtpd_milters=${config.filter ? filter(paths) : ''}`,
    // TRUSTED_NETWORKS relay like authenticated users: signed, never scanned.
    ...(config.trustedNetworks.length > 0 ? [`smtpd_milter_maps=cidr:${paths.milterMaps}`] : []),
  ];
}

export function milterFiles({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  const trusted = config.trustedNetworks.map(({ address, prefix }) => `${address}/${prefix} ${config.dkim ? signer(paths) : 'DISABLE'}\n`);
  return [
    { path: paths.milterMaps, content: `${HEADER}${trusted.join('')}`, mode: 0o644 },
    // Postfix logs only the start of a header; the INFO text names the domain and selector.
    { path: paths.milterHeaderChecks, content: `${HEADER}/^DKIM-Signature:.*[;[:space:]]d=([^;[:space:]]+);.*[;[:space:]]s=([^;[:space:]]+);/ INFO dkim signed d=$1 s=$2\n`, mode: 0o644 },
  ];
}

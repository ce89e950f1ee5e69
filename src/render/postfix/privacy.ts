// SUBMITTER_PRIVACY: mail from an authenticated submitter goes through its own cleanup service,
// whose header checks replace the submitter's Received line (client name, address, TLS details)
// with relaybox's own hop, and drop the client address a webmail may have added.
import type { StatePaths } from '../paths.ts';
import type { RenderInput, RenderedFile } from '../types.ts';
import { HEADER, type Setting } from './format.ts';

export const SUBMISSION_CLEANUP = 'cleanup-submission';

// Postfix matches a folded header as one string; `.` also matches its line breaks. Only a line
// written by this Postfix for an authenticated session is rewritten (ESMTPA, ESMTPSA).
const hostPattern = (hostname: string) => hostname.replace(/[.\\[\]()*+?{}|^$]/g, (c) => `\\${c}`);

export function submissionHeaderChecks(hostname: string): string {
  return `${HEADER}/^Received: from .*[[:space:]]by (${hostPattern(hostname)}) \\(Postfix\\) with (ESMTPS?A) id ([[:alnum:]]+)(.*)$/ REPLACE Received: by $1 (Postfix) with $2 id $3$4
/^X-Originating-IP:/ IGNORE
`;
}

/** main.cf: whether Postfix notes `(Authenticated sender: ...)` in its Received line. */
export function privacySettings({ config }: RenderInput): Setting[] {
  return [['smtpd_sasl_authenticated_header', config.submitterPrivacy ? 'no' : 'yes']];
}

/** master.cf options of a submission listener: its own cleanup service when the submitter stays private. */
export function privacyListenerOptions({ config }: RenderInput): string[] {
  return config.submitterPrivacy ? [`cleanup_service_name=${SUBMISSION_CLEANUP}`] : [];
}

/** master.cf options of that cleanup service. */
export function privacyCleanupOptions(paths: StatePaths): string[] {
  return [`header_checks=regexp:${paths.submissionHeaderChecks}`];
}

export function privacyFiles({ config }: RenderInput, paths: StatePaths): RenderedFile[] {
  return config.submitterPrivacy ? [{ path: paths.submissionHeaderChecks, content: submissionHeaderChecks(config.hostname), mode: 0o644 }] : [];
}

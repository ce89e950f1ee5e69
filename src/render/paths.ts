// Where everything lives under STATE_DIR. One place, so renderers, supervisor and tests agree.
import { createHash } from 'node:crypto';

export function statePaths(stateDir: string) {
  const queue = `${stateDir}/queue`;
  const postfix = `${stateDir}/postfix`;
  const dovecot = `${stateDir}/dovecot`;
  const tls = `${stateDir}/tls`;
  return {
    stateDir,
    postfix,
    mainCf: `${postfix}/main.cf`,
    masterCf: `${postfix}/master.cf`,
    senderLoginMap: `${postfix}/sender_login`,
    mailboxMap: `${postfix}/mailboxes`,
    relayPasswordMap: `${postfix}/relay_password`,
    relayTlsPolicy: `${postfix}/relay_tls_policy`,
    senderRelayMap: `${postfix}/sender_relay`,
    /** Routes as transport:nexthop (sender_dependent_default_transport_maps), when one is implicit TLS. */
    senderTransportMap: `${postfix}/sender_transport`,
    /** TLS_POLICY rows for direct delivery. */
    directTlsPolicy: `${postfix}/direct_tls_policy`,
    /** Debian's hashed CA links, copied into smtp's chroot (smtp_tls_CApath is read after chroot). */
    chrootCaPath: `${queue}/etc/ssl/certs`,
    /** The supervisor's Postfix policy service (per-user sending limits). */
    policySocket: `${queue}/private/relaybox-policy`,
    /** The supervisor's SRS socketmap (srs/service.ts) and its HMAC key, made once. */
    srsSocket: `${queue}/private/relaybox-srs`,
    srsSecret: `${stateDir}/srs-secret`,
    /** Routed senders of the local domains, refused on port 25 from untrusted clients (regexp: access table). */
    routeSenders: `${postfix}/route_senders`,
    /** Counters, bans and suspensions kept across restarts (abuse/store.ts). */
    abuseState: `${stateDir}/abuse-state.json`,
    bannedClients: `${postfix}/banned_clients`,
    /** ROLE=relay: who may log in on the handoff listener, and who may not on 587/465 (check_sasl_access). */
    handoffLogins: `${postfix}/handoff_logins`,
    handoffRefused: `${postfix}/handoff_refused`,
    /** ROLE=relay, handing off: the peer as the transport for everything, with its credentials and TLS pin. */
    handoffTransport: `${postfix}/handoff_transport`,
    handoffPasswordMap: `${postfix}/handoff_password`,
    /** What a relay left queued at its last stop because no peer took it (replicas/stranded.ts). */
    strandedMarker: `${stateDir}/queue-stranded.json`,
    aliasMap: `${postfix}/aliases`,
    /** Port 25: the local domains, whose senders must authenticate (or be in TRUSTED_NETWORKS). */
    localSenders: `${postfix}/local_senders`,
    /** Every port: envelope addresses must be ASCII (no SMTPUTF8: Dovecot's LMTP cannot take it). */
    asciiAddresses: `${postfix}/ascii_addresses`,
    /** Submission: the submitter's own Received line and client headers removed (SUBMITTER_PRIVACY). */
    submissionHeaderChecks: `${postfix}/submission_header_checks`,
    opensslConf: `${postfix}/openssl.cnf`,
    queue,
    postfixData: `${stateDir}/postfix-data`,
    masterPid: `${queue}/pid/master.pid`,
    postfixLogFifo: `${stateDir}/postfix-log.fifo`,
    dovecot,
    dovecotConf: `${dovecot}/dovecot.conf`,
    /** Dovecot's auth policy settings, apart because they hold the endpoint's API key (0600). */
    dovecotAuthPolicy: `${dovecot}/auth-policy.conf`,
    passwdFile: `${dovecot}/passwd`,
    /** The app passwords' passwd-files Dovecot reads (per protocol and slot), rendered from appPasswordStore. */
    appPasswordDir: `${dovecot}/app-passwords`,
    /** The app passwords themselves (name, scope, dates, hash): the supervisor's record, root only. */
    appPasswordStore: `${stateDir}/app-passwords.json`,
    dovecotBase: `${stateDir}/run`,
    dovecotState: `${stateDir}/dovecot-state`,
    authSocket: `${queue}/private/auth`,
    lmtpSocket: `${queue}/private/dovecot-lmtp`,
    quotaSocket: `${queue}/private/quota-status`,
    /** The supervisor's header From: milter (abuse/header-from-milter.ts), before OpenDKIM on 587/465. */
    headerFromMilterSocket: `${queue}/private/relaybox-milter`,
    tls,
    generatedCert: `${tls}/cert.pem`,
    generatedKey: `${tls}/key.pem`,
    servedCert: `${tls}/served-cert.pem`,
    servedKey: `${tls}/served-key.pem`,
    dhParams: `${tls}/dh.pem`,
    generatedUsers: `${stateDir}/generated-users`,
    mail: `${stateDir}/mail`,
    milterMaps: `${postfix}/milter_maps`,
    milterHeaderChecks: `${postfix}/milter_header_checks`,
    chrootResolvConf: `${queue}/etc/resolv.conf`,
    unbound: `${stateDir}/unbound`,
    unboundConf: `${stateDir}/unbound/unbound.conf`,
    unboundPid: `${stateDir}/unbound/unbound.pid`,
    unboundAnchor: `${stateDir}/unbound/trust-anchor.key`,
    /** The supervisor's MTA-STS policy socketmap (outbound TLS policy lookups by Postfix's smtp). */
    mtaStsSocket: `${queue}/private/relaybox-mta-sts`,
    dkimKeys: `${stateDir}/dkim`,
    opendkim: `${stateDir}/opendkim`,
    opendkimConf: `${stateDir}/opendkim/opendkim.conf`,
    opendkimKeyTable: `${stateDir}/opendkim/KeyTable`,
    opendkimSigningTable: `${stateDir}/opendkim/SigningTable`,
    opendkimPid: `${stateDir}/opendkim/opendkim.pid`,
    opendkimSocketDir: `${queue}/opendkim`,
    opendkimSocket: `${queue}/opendkim/opendkim.sock`,
    rspamd: `${stateDir}/rspamd`,
    rspamdConf: `${stateDir}/rspamd/rspamd.conf`,
    rspamdDb: `${stateDir}/rspamd-db`,
    rspamdRun: `${stateDir}/rspamd-run`,
    rspamdSocketDir: `${queue}/rspamd`,
    rspamdSocket: `${queue}/rspamd/milter.sock`,
  };
}

export type StatePaths = ReturnType<typeof statePaths>;

/** A path below the queue directory as Postfix's chrooted processes see it. */
export function inChroot(paths: StatePaths, path: string): string {
  return path.startsWith(`${paths.queue}/`) ? path.slice(paths.queue.length) : path;
}

/** Dovecot instance name, distinct per STATE_DIR so instances on one host never meet. */
export function instanceName(stateDir: string): string {
  return `relaybox-${createHash('sha256').update(stateDir).digest('hex').slice(0, 10)}`;
}

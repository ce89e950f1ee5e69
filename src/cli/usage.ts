// The admin commands' usage text, apart so that `relaybox --help` and `run` load nothing else of them.
export const ADMIN_USAGE = `  status [--json]             this replica: daemons, checks, queue counts, bans, suspended users
  queue list [FILTERS]        queued mail: id, state, age, size, sender, recipients, last deferral reason
  queue show ID [--body]      one message's envelope and headers (the body only with --body)
  queue hold|release|delete|retry (ID... | FILTERS | --all)
                              FILTERS: --state active|deferred|hold|incoming, --sender S, --recipient R,
                              --user U (who submitted it), --older-than 2h, --newer-than 10m
  users list                  users, aliases, suspended?, sent against their limits, last login
  users suspend USER --reason TEXT      holds their recent mail; they can send nothing more
  users unsuspend USER [--release-held|--delete-held]
  users release-held USER | users delete-held USER   their mail on hold, in one step
  users app-password add USER NAME [--scope smtp|imap|both]   a new credential for one device,
                              printed once (login name: USER); default scope both
  users app-password list [USER] | users app-password revoke USER NAME   revoked = refused at once
  bans list | bans lift ADDRESS | bans add ADDRESS [--duration 1h] [--reason TEXT]
  dkim list                   selectors per domain and whether DNS publishes each key
  dkim rotate DOMAIN [--selector S]     a new key (printed record; it does not sign yet)
  dkim verify DOMAIN [--wait 10m] [--grace 7d]   switches signing once DNS publishes the new key
  dkim retire DOMAIN [--force] | dkim cancel DOMAIN
  (all take --json; STATE_DIR or --state-dir says which supervisor)`;

import type { Config } from '../config/schema.ts';
import type { UserEntry } from '../config/values.ts';

/** Everything a renderer needs: the validated config plus facts the supervisor resolved at start. */
export interface RenderInput {
  config: Config;
  /** The accounts to render: the configured ones, or the generated first-run account. */
  users: UserEntry[];
  /** `publicKey`: the SHA-256 fingerprint of the certificate's public key (Postfix's colon form), which the relays pin. */
  tls: { certFile: string; keyFile: string; publicKey?: string };
  /** Numeric ids of the unprivileged user that owns the mailboxes. */
  vmail: { uid: number; gid: number };
  /** Client addresses banned right now (AUTH_BAN_*), kept across re-renders. */
  bannedClients: string[];
  /** One signing key per domain and selector, checked usable (generated or from DKIM_KEY_DIR). */
  dkimKeys: DkimKey[];
  /** Dovecot's auth policy endpoint the supervisor serves on loopback (bans on IMAP), when bans are on. */
  authPolicy?: AuthPolicyEndpoint;
  /** The accounts' app passwords (STATE_DIR/app-passwords.json), hashes only. */
  appPasswords?: AppPassword[];
  /** ROLE=relay with HANDOFF_PEERS: the handoff account's password hash, for Dovecot's passdb. */
  handoffHash?: string;
  /**
   * ROLE=relay, stopping: no SMTP listener any more; with `handoffTo`, everything queued goes to
   * that peer's handoff listener (README, "More than one machine").
   */
  drain?: { handoffTo?: { host: string; port: number } };
}

export interface DkimKey {
  domain: string;
  selector: string;
  path: string;
}

export interface AuthPolicyEndpoint {
  url: string;
  /** Random per start; Dovecot sends it as X-API-Key. Secret. */
  apiKey: string;
  /** auth_policy_hash_nonce, which Dovecot requires; random per start. */
  nonce: string;
}

export interface RenderedFile {
  path: string;
  content: string;
  mode: number;
  /** Group that must be able to read the file (e.g. dovecot for the passwd-file). */
  group?: string;
  /** User that owns the file (e.g. opendkim for its keys); root when unset. */
  owner?: string;
}

export type AppPasswordScope = 'smtp' | 'imap' | 'both';

/** One app password (src/render/app-passwords.ts). */
export interface AppPassword {
  /** The account (user@domain); the login name with this credential too. */
  user: string;
  /** The device or purpose, unique per account; what logs and lists show. */
  name: string;
  scope: AppPasswordScope;
  /** Unix ms. */
  created: number;
  /** Unix ms of the last login seen with this credential; undefined = none seen. */
  lastUsed?: number;
  /** 1..APP_PASSWORD_SLOTS: which passdb holds it. */
  slot: number;
  /** Dovecot {SCHEME} hash; the secret itself is never stored. */
  hash: string;
}

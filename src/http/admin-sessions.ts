// Who may use the admin API: a bearer token (ADMIN_TOKEN, for scripts), or a console session made by
// logging in with that token or as one of ADMIN_USERS (their mail password, checked by Dovecot).
// Sessions live in memory (a restart logs everyone out), in an HttpOnly SameSite=Strict cookie;
// every state-changing request of a session must carry its CSRF token in a header.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'relaybox_admin';
export const CSRF_HEADER = 'x-csrf-token';
const SESSION_IDLE_MS = 30 * 60_000;
const SESSION_MAX_MS = 12 * 3600_000;

export interface Session {
  who: string;
  csrf: string;
  created: number;
  seen: number;
}

export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();

  create(who: string, now = Date.now()): { id: string; session: Session } {
    this.sweep(now);
    const id = randomBytes(32).toString('base64url');
    const session = { who, csrf: randomBytes(24).toString('base64url'), created: now, seen: now };
    this.sessions.set(id, session);
    return { id, session };
  }

  find(id: string | undefined, now = Date.now()): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session || now - session.seen > SESSION_IDLE_MS || now - session.created > SESSION_MAX_MS) {
      this.sessions.delete(id);
      return undefined;
    }
    session.seen = now;
    return session;
  }

  end(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  private sweep(now: number): void {
    for (const [id, session] of this.sessions) if (now - session.seen > SESSION_IDLE_MS || now - session.created > SESSION_MAX_MS) this.sessions.delete(id);
  }
}

export function sessionCookie(id: string): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_MS / 1000}`;
}

export const clearedCookie = `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;

// MX hosts on loopback: each an SMTP server (helpers/upstream.ts) on port 25 of its own 127.0.0.x
// address, where Postfix's direct delivery connects after the MX and A lookups.
import { Upstream } from './upstream.ts';
import type { KeyPair } from './test-ca.ts';

export interface MxOptions {
  address: string;
  name: string;
  certificate: KeyPair;
  /** Strips STARTTLS from its EHLO answer, as an attacker on the path would. */
  noStartTls?: boolean;
}

export function startMx({ address, name, certificate, noStartTls }: MxOptions): Promise<Upstream> {
  return Upstream.start({ certificate, name, listen: { host: address, port: 25 }, ...(noStartTls ? { noStartTls } : {}) });
}

/** Whether the MX received a message with this subject, and whether its MAIL FROM came over TLS. */
export function receivedWith(mx: Upstream, subject: string): { tls: boolean } | undefined {
  const message = mx.messages.find((m) => m.data.includes(`Subject: ${subject}`));
  if (!message) return undefined;
  const mail = mx.commands.find((c) => c.connection === message.connection && /^MAIL FROM/i.test(c.line));
  return { tls: mail?.tls ?? false };
}

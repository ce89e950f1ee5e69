// The tests speak SMTP through the same session module as `relaybox selftest` (src/protocol/session.ts),
// and share one way to log in and send: 587 with STARTTLS (or 465, implicit TLS), then AUTH PLAIN.
import assert from 'node:assert/strict';
import { SmtpSession, type Reply } from '../../src/protocol/session.ts';

export { SmtpSession as SmtpClient, type Reply };

/** The password every test account has (helpers/instance.ts hashes it into MAIL_USERS). */
export const PASSWORD = 'correct horse battery staple';

export function message(from: string, to: string, subject: string, body = 'Hello from the relaybox tests.'): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W+/g, '-')}-${Date.now()}@client.example>\r\n\r\n${body}\r\n`;
}

export interface SubmissionPorts {
  submission: number;
  submissions: number;
}

export interface AuthOptions {
  password?: string;
  /** 465 (implicit TLS) instead of 587 with STARTTLS. */
  implicitTls?: boolean;
  localAddress?: string;
  timeoutMs?: number;
}

/** A session after TLS and AUTH PLAIN: the client (the caller ends it) and AUTH's reply. */
export async function authenticated(ports: SubmissionPorts, user: string, options: AuthOptions = {}): Promise<{ client: SmtpSession; auth: Reply }> {
  const { client } = await SmtpSession.connect(options.implicitTls ? ports.submissions : ports.submission, {
    tls: options.implicitTls === true,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  try {
    await client.ehlo();
    if (!options.implicitTls) await client.starttls();
    return { client, auth: await client.authPlain(user, options.password ?? PASSWORD) };
  } catch (error) {
    client.destroy();
    throw error;
  }
}

/** Whether `user` can log in (235). */
export async function authWorks(ports: SubmissionPorts, user: string, options: AuthOptions = {}): Promise<boolean> {
  const { client, auth } = await authenticated(ports, user, options);
  await client.quit();
  return auth.code === 235;
}

/** One authenticated message (AUTH must answer 235); the reply that ended the transaction. */
export async function submit(ports: SubmissionPorts, user: string, to: string[], subject: string, options: AuthOptions & { from?: string; body?: string } = {}): Promise<Reply> {
  const { client, auth } = await authenticated(ports, user, options);
  try {
    assert.equal(auth.code, 235, auth.text);
    const from = options.from ?? user;
    return (await client.send(from, to, message(from, to[0]!, subject, options.body))).final;
  } finally {
    await client.quit();
  }
}

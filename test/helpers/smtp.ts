// The tests speak SMTP through the same session module as `relaybox selftest` (src/protocol/session.ts).
export { SmtpSession as SmtpClient, type Reply } from '../../src/protocol/session.ts';

export function message(from: string, to: string, subject: string, body = 'Hello from the relaybox tests.'): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W+/g, '-')}-${Date.now()}@client.example>\r\n\r\n${body}\r\n`;
}

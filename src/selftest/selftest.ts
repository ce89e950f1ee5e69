// The tutorial's manual test, done for the operator against the running instance: EHLO, STARTTLS,
// a wrong password refused, an unauthenticated relay refused, an authenticated transaction that
// reaches RCPT and is reset before DATA (nothing is sent).
import { randomBytes, randomInt } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { enabledListeners, localAddress } from '../listeners.ts';
import { SmtpSession, type Reply } from '../protocol/session.ts';

export interface SelftestStep {
  name: string;
  status: 'ok' | 'fail' | 'skip';
  detail: string;
}

/** Where the outside recipient of the checks lives: reserved, never delivered to (RSET before DATA). */
const OUTSIDE = 'relaybox-selftest@example.com';
const EHLO_NAME = 'selftest.relaybox.invalid';
const TIMEOUT_MS = 20_000;

/** A reply as one line: its code and its last line of text. */
const shown = (reply: Reply) => `${reply.code} ${reply.text.split('\n').at(-1) ?? ''}`.trimEnd();

export interface SelftestOptions {
  config: Config;
  credentials?: { user: string; password: string };
}

/** Runs the steps in order; stops at the first failure. */
export async function runSelftest({ config, credentials }: SelftestOptions, onStep: (step: SelftestStep) => void = () => {}): Promise<SelftestStep[]> {
  const steps: SelftestStep[] = [];
  const record = (step: SelftestStep) => {
    steps.push(step);
    onStep(step);
    return step.status !== 'fail';
  };
  const host = localAddress(config.bindAddress);
  // On loopback every session comes from a random 127/8 address: the deliberate wrong password must not
  // pile up Dovecot's per-address delay or count towards a ban when the selftest runs every minute.
  const source = () => (host.startsWith('127.') ? `127.${1 + randomInt(254)}.${randomInt(256)}.${1 + randomInt(254)}` : undefined);
  const listeners = enabledListeners(config.ports);
  const submissions = listeners.filter((listener) => listener.role === 'submission');
  // STARTTLS first: it exercises more (plaintext EHLO, the upgrade, AUTH offered only after it).
  const listener = submissions.find((l) => l.tls === 'starttls') ?? submissions[0];
  if (!listener) {
    const mailbox = config.role === 'mailbox';
    record({ name: 'submission', status: mailbox ? 'skip' : 'fail', detail: mailbox ? 'a mailbox replica (ROLE=mailbox) has no submission port: run the selftest on a relay replica' : 'every submission port is disabled (0): nothing to test' });
    return steps;
  }
  const { port } = listener;
  const implicit = listener.tls === 'implicit';
  const open = () => SmtpSession.connect(port, { host, tls: implicit, localAddress: source(), timeoutMs: TIMEOUT_MS });

  /** Connect, EHLO and (on 587) STARTTLS; the first session records each step. */
  const submission = async (verbose: boolean): Promise<SmtpSession | undefined> => {
    const { client: session, greeting } = await open();
    if (verbose && !record({ name: `connect ${host}:${port}`, status: greeting.code === 220 ? 'ok' : 'fail', detail: shown(greeting) })) return undefined;
    const ehlo = await session.ehlo(EHLO_NAME);
    if (verbose && !record({ name: 'EHLO', status: ehlo.code === 250 ? 'ok' : 'fail', detail: implicit ? 'implicit TLS' : /STARTTLS/.test(ehlo.text) ? 'STARTTLS offered' : 'STARTTLS not offered' })) return undefined;
    if (!implicit) {
      const again = await session.starttls({}, EHLO_NAME).catch((error: Error) => error);
      if (again instanceof Error) {
        record({ name: 'STARTTLS', status: 'fail', detail: again.message });
        return undefined;
      }
      if (verbose && !record({ name: 'STARTTLS', status: /AUTH\b.*PLAIN/.test(again.text) ? 'ok' : 'fail', detail: /AUTH\b.*PLAIN/.test(again.text) ? 'TLS up, AUTH PLAIN offered' : 'AUTH PLAIN not offered after TLS' })) return undefined;
    }
    return session;
  };

  try {
    const first = await submission(true);
    if (!first) return steps;
    const who = credentials?.user ?? `selftest@${config.hostname}`;
    // Dovecot answers a failed AUTH only after AUTH_FAILURE_DELAY.
    const wrong = await first.cmd(`AUTH PLAIN ${Buffer.from(`\0${who}\0${randomBytes(12).toString('hex')}`).toString('base64')}`, (config.auth.failureDelaySeconds + 15) * 1000);
    await first.quit();
    if (!record({ name: 'AUTH with a wrong password is refused', status: wrong.code === 535 ? 'ok' : 'fail', detail: shown(wrong) })) return steps;

    const inbound = listeners.find((l) => l.role === 'inbound');
    const relayPort = inbound?.port ?? port;
    const relaySession = inbound ? (await SmtpSession.connect(inbound.port, { host, localAddress: source(), timeoutMs: TIMEOUT_MS })).client : await submission(false);
    if (!relaySession) return steps;
    if (inbound) await relaySession.ehlo(EHLO_NAME);
    // An outside sender: a local one is refused at MAIL on port 25 already (envelope.ts).
    await relaySession.cmd(`MAIL FROM:<${OUTSIDE}>`);
    const relay = await relaySession.cmd(`RCPT TO:<${OUTSIDE}>`);
    await relaySession.quit();
    if (!record({ name: `unauthenticated relay on port ${relayPort} is refused`, status: relay.code >= 500 ? 'ok' : 'fail', detail: shown(relay) })) return steps;

    if (!credentials) {
      record({ name: 'authenticated transaction', status: 'skip', detail: 'set SELFTEST_USER and SELFTEST_PASSWORD (or SELFTEST_PASSWORD_FILE) to test it' });
      return steps;
    }
    const session = await submission(false);
    if (!session) return steps;
    const auth = await session.authPlain(credentials.user, credentials.password);
    if (!record({ name: `AUTH as ${credentials.user}`, status: auth.code === 235 ? 'ok' : 'fail', detail: shown(auth) })) {
      await session.quit();
      return steps;
    }
    const mail = await session.cmd(`MAIL FROM:<${credentials.user}>`);
    const rcpt = mail.code === 250 ? await session.cmd(`RCPT TO:<${OUTSIDE}>`) : mail;
    await session.cmd('RSET');
    await session.quit();
    record({ name: 'authenticated transaction reaches RCPT (reset before DATA, nothing sent)', status: rcpt.code === 250 ? 'ok' : 'fail', detail: shown(rcpt) });
  } catch (error) {
    record({ name: 'selftest', status: 'fail', detail: (error as Error).message });
  }
  return steps;
}

// The header From: check as a milter the supervisor serves on a unix socket in the queue directory.
// Postfix puts it before OpenDKIM on the submission ports, so a refused message is never signed; it
// sees the login ({auth_authen}), the envelope sender and every header, and answers at the end of
// the headers: accept, or 550 5.7.1 (Postfix refuses the message at the end of DATA, before it is
// queued). A milter that does not answer means 451 (milter_default_action), never unchecked mail.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ACCEPT, CONTINUE, MilterReader, milterMacros, negotiationReply, nulStrings, replyCode, SKIP, type MilterPacket } from '../protocol/milter.ts';
import { judgeHeaderFrom, REFUSAL_PREFIX, type HeaderFromVerdict, type SendAsTable } from './header-from.ts';
import { UnixSocketServer, UnixSocketService } from '../protocol/unix-server.ts';

/** What one connection knows of the message in progress. */
interface MessageState {
  login: string;
  envelope: string;
  fromHeaders: string[];
}

const fresh = (): MessageState => ({ login: '', envelope: '', fromHeaders: [] });

/** Steps the check does not need: Postfix neither sends nor waits for them. */
const SKIPPED = SKIP.connect | SKIP.helo | SKIP.rcpt | SKIP.data | SKIP.body | SKIP.unknown;

export class HeaderFromMilter extends UnixSocketService {
  protected readonly server: UnixSocketServer;
  private table: SendAsTable;
  private readonly log: Logger;

  constructor(options: { socketPath: string; owner: { uid: number; gid: number } | undefined; table: SendAsTable; log: Logger }) {
    super();
    this.table = options.table;
    this.log = options.log;
    this.server = new UnixSocketServer({ ...options, event: 'header_from_milter', label: 'header From: milter', serve: (socket) => this.serve(socket) });
  }

  /** A reload: who may send as what. Messages judged from now on use it. */
  configure(table: SendAsTable): void {
    this.table = table;
  }

  private serve(socket: Socket): void {
    const reader = new MilterReader();
    let state = fresh();
    socket.on('data', (chunk: Buffer) => {
      let packets: MilterPacket[];
      try {
        packets = reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const packet of packets) {
        if (packet.command === 'Q') {
          socket.end();
          return;
        }
        if (packet.command === 'A' || packet.command === 'K') state = fresh();
        const reply = this.answer(packet, state);
        if (reply && !socket.destroyed) socket.write(reply);
      }
    });
  }

  /** The reply to one packet; undefined for those that take none (macros, abort). */
  private answer({ command, data }: MilterPacket, state: MessageState): Buffer | undefined {
    switch (command) {
      case 'O':
        return negotiationReply(data, SKIPPED);
      case 'D': {
        const { stage, values } = milterMacros(data);
        // A client certificate's account (CLIENT_CA_FILE) when there is no login: Postfix sets
        // {cert_subject} only for a verified certificate, which the relay check judged at RCPT.
        if (stage === 'M') state.login = values.get('auth_authen') || (values.get('cert_subject') ?? '').toLowerCase();
        return undefined;
      }
      case 'M':
        state.envelope = (nulStrings(data)[0] ?? '').replace(/^<(.*)>$/, '$1');
        state.fromHeaders = [];
        return CONTINUE;
      case 'L': {
        const [name = '', value = ''] = nulStrings(data);
        if (name.trim().toLowerCase() === 'from') state.fromHeaders.push(value);
        return CONTINUE;
      }
      case 'N':
        return this.judge(state);
      case 'E':
        return ACCEPT;
      case 'A':
      case 'K':
        return undefined;
      default:
        return CONTINUE;
    }
  }

  private judge(state: MessageState): Buffer {
    // This milter runs on the submission ports only, where every message has a login: none fails closed.
    const verdict: HeaderFromVerdict = state.login ? judgeHeaderFrom(this.table, state.login, state.envelope, state.fromHeaders) : { ok: false, reason: 'the session is not authenticated', addresses: [] };
    if (verdict.ok) return ACCEPT;
    this.log.warn({ event: 'header_from_refused', user: state.login, sender: state.envelope, addresses: verdict.addresses }, `refused a message from ${state.login}: ${verdict.reason}`);
    return replyCode(`${REFUSAL_PREFIX}Header From: refused: ${verdict.reason}; send as an address your login owns`);
  }
}

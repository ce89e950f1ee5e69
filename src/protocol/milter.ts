// A milter readiness probe: the option negotiation that Postfix opens every milter session with.
import { connect } from 'node:net';
import type { ProbeResult } from './probes.ts';

/** SMFIC_OPTNEG: milter protocol 6, all actions, no protocol steps skipped. */
function optionNegotiation(): Buffer {
  const body = Buffer.alloc(13);
  body.write('O', 0);
  body.writeUInt32BE(6, 1);
  body.writeUInt32BE(0x1ff, 5);
  body.writeUInt32BE(0, 9);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** Connects to a milter's unix socket and expects its own option negotiation packet back. */
export function probeMilter(socketPath: string, timeoutMs = 3000): Promise<ProbeResult> {
  const started = performance.now();
  const checkedAt = new Date().toISOString();
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    let received = Buffer.alloc(0);
    const done = (error?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: error === undefined, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt });
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write(optionNegotiation()));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 5) return;
      done(received.subarray(4, 5).toString() === 'O' ? undefined : `unexpected milter reply ${JSON.stringify(received.subarray(4, 5).toString())}`);
    });
    socket.on('error', (error) => done(error.message));
    socket.on('close', () => done('closed without an answer'));
  });
}

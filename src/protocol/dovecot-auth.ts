// One password check through Dovecot's auth protocol, on the socket Postfix's SASL uses: how the
// admin console's ADMIN_USERS log in with their mail password without relaybox ever reading a hash.
// The client's address goes along (rip=), so Dovecot's auth policy refuses a banned one.
import { connect } from 'node:net';

export type AuthVerdict = 'ok' | 'fail';

export function dovecotAuthenticate(socketPath: string, user: string, password: string, remoteIp: string, timeoutMs = 10_000): Promise<AuthVerdict> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    let received = '';
    let asked = false;
    const timer = setTimeout(() => finish(new Error(`Dovecot's auth service did not answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (outcome: AuthVerdict | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    socket.on('error', (error) => finish(new Error(`Dovecot's auth service cannot be reached: ${error.message}`)));
    socket.write(`VERSION\t1\t2\nCPID\t${process.pid}\n`);
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (!asked && received.includes('DONE\n')) {
        asked = true;
        const response = Buffer.from(`\0${user}\0${password}`).toString('base64');
        const clean = (value: string) => value.replace(/[\t\n\r]/g, '');
        socket.write(`AUTH\t1\tPLAIN\tservice=relaybox-admin\tsecured\trip=${clean(remoteIp)}\tresp=${response}\n`);
        return;
      }
      const reply = /^(OK|FAIL|CONT)\t1\b.*$/m.exec(received);
      if (!reply) return;
      finish(reply[1] === 'OK' ? 'ok' : 'fail');
    });
  });
}

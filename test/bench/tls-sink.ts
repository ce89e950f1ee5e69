// The ceiling (a): a minimal SMTP sink with STARTTLS and AUTH, no Postfix behind it. It offers
// STARTTLS, accepts any AUTH (no password check), MAIL, RCPT, RSET, DATA (discarded) and QUIT.
// One worker per core (node:cluster, sharing the port) so it is not limited to one core.
//
//   node test/bench/tls-sink.ts PORT CERT_FILE KEY_FILE     # prints "listening PORT" when ready
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { createSecureContext, TLSSocket } from 'node:tls';

const [portArg, certFile, keyFile] = process.argv.slice(2);
const port = Number(portArg);
const workers = Math.max(1, Math.min(availableParallelism(), 4));

let context: ReturnType<typeof createSecureContext> | undefined;

function serve(socket: Socket): void {
  context ??= createSecureContext({ cert: readFileSync(certFile!), key: readFileSync(keyFile!), minVersion: 'TLSv1.2' });
  let stream: Socket | TLSSocket = socket;
  let buffer = '';
  let inData = false;
  let secure = false;
  const reply = (text: string) => stream.write(`${text}\r\n`);

  const onLine = (line: string): boolean => {
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === 'EHLO' || verb === 'HELO') {
      reply(`250-sink.example\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n${secure ? '250-AUTH PLAIN LOGIN\r\n' : '250-STARTTLS\r\n'}250 SMTPUTF8`);
    } else if (verb === 'STAR' && !secure) {
      reply('220 2.0.0 Ready to start TLS');
      socket.removeAllListeners('data');
      const tls = new TLSSocket(socket, { isServer: true, secureContext: context });
      tls.on('error', () => socket.destroy());
      stream = tls;
      secure = true;
      buffer = '';
      tls.on('data', onData);
      return false;
    } else if (verb === 'AUTH') reply('235 2.7.0 Authentication successful');
    else if (verb === 'DATA') {
      inData = true;
      reply('354 End data with <CR><LF>.<CR><LF>');
    } else if (verb === 'QUIT') {
      reply('221 2.0.0 Bye');
      stream.end();
      return false;
    } else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') reply('250 2.0.0 Ok');
    else reply('502 5.5.2 Error: command not recognized');
    return true;
  };

  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    for (;;) {
      if (inData) {
        const end = buffer.indexOf('\r\n.\r\n');
        if (end < 0) {
          // keep only a tail long enough to hold a split terminator
          if (buffer.length > 8) buffer = buffer.slice(-8);
          return;
        }
        buffer = buffer.slice(end + 5);
        inData = false;
        reply('250 2.0.0 Ok: queued');
        continue;
      }
      const eol = buffer.indexOf('\r\n');
      if (eol < 0) return;
      const line = buffer.slice(0, eol);
      buffer = buffer.slice(eol + 2);
      if (!onLine(line)) return;
    }
  };

  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
  reply('220 sink.example ESMTP bench sink');
}

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    worker.on('listening', () => {
      listening += 1;
      if (listening === workers) process.stdout.write(`listening ${port}\n`);
    });
  }
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGKILL');
    process.exit(0);
  });
} else {
  createServer(serve).listen(port, '127.0.0.1');
}

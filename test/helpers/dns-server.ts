// A small authoritative DNS server on loopback (UDP and TCP) for the tests' .test/.example records:
// SPF, DKIM, DMARC, MX. Unknown names get NXDOMAIN, names without the asked type NODATA; both carry
// an SOA, without which rspamd's resolver retries until it times out.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import packet, { type Answer, type Packet } from 'dns-packet';

type Records = { TXT?: string[]; A?: string[]; MX?: Array<[number, string]> };

export class DnsServer {
  readonly host = '127.0.0.1';
  port = 0;
  private readonly zone = new Map<string, Records>();
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;

  /** Replaces the records of one name (type by type). */
  set(name: string, records: Records): void {
    const key = name.toLowerCase().replace(/\.$/, '');
    this.zone.set(key, { ...this.zone.get(key), ...records });
  }

  remove(name: string): void {
    this.zone.delete(name.toLowerCase().replace(/\.$/, ''));
  }

  /** `127.0.0.1:PORT`, for DNS_SERVERS and node:dns setServers. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  static async start(): Promise<DnsServer> {
    const server = new DnsServer();
    server.udp = createSocket('udp4');
    server.udp.on('message', (message, remote) => {
      const reply = server.reply(message);
      if (reply) server.udp!.send(reply, remote.port, remote.address);
    });
    await new Promise<void>((resolve) => server.udp!.bind(0, server.host, resolve));
    server.port = server.udp.address().port;
    server.tcp = createServer((socket) => {
      let buffer = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
          const length = buffer.readUInt16BE(0);
          const reply = server.answer(packet.decode(buffer.subarray(2, 2 + length)));
          buffer = buffer.subarray(2 + length);
          socket.write(packet.streamEncode(reply));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.tcp!.listen(server.port, server.host, resolve));
    return server;
  }

  private reply(message: Buffer): Buffer | undefined {
    let query: Packet;
    try {
      query = packet.decode(message);
    } catch {
      return undefined;
    }
    const reply = packet.encode(this.answer(query));
    const edns = query.additionals?.some((record) => record.type === 'OPT');
    // Over 512 bytes without EDNS: truncated, the client asks again over TCP.
    if (reply.length > 512 && !edns) return packet.encode({ id: query.id, type: 'response', flags: packet.TRUNCATED_RESPONSE | packet.AUTHORITATIVE_ANSWER, questions: query.questions ?? [], answers: [] });
    return reply;
  }

  private answer(query: Packet): Packet {
    const question = query.questions?.[0];
    const base: Packet = { id: query.id, type: 'response', flags: packet.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & packet.RECURSION_DESIRED), questions: query.questions ?? [], answers: [] };
    if (!question) return { ...base, flags: (base.flags ?? 0) | 1 };
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const soa: Answer = { type: 'SOA', class: 'IN', ttl: 60, name: name.split('.').slice(-2).join('.'), data: { mname: 'ns.test', rname: 'hostmaster.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 } };
    const records = this.zone.get(name);
    if (!records) return { ...base, flags: (base.flags ?? 0) | 3, authorities: [soa] };
    const answers: Answer[] = [];
    if (question.type === 'TXT') for (const text of records.TXT ?? []) answers.push({ type: 'TXT', class: 'IN', name: question.name, ttl: 60, data: chunks(text) });
    if (question.type === 'A') for (const address of records.A ?? []) answers.push({ type: 'A', class: 'IN', name: question.name, ttl: 60, data: address });
    if (question.type === 'MX') for (const [preference, exchange] of records.MX ?? []) answers.push({ type: 'MX', class: 'IN', name: question.name, ttl: 60, data: { preference, exchange } });
    return { ...base, answers, ...(answers.length === 0 ? { authorities: [soa] } : {}) };
  }

  async stop(): Promise<void> {
    this.udp?.close();
    await new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
  }
}

/** A TXT record's text as character-strings of at most 255 bytes. */
function chunks(text: string): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out;
}

// Kubernetes' topology on one host: relay replicas (ROLE=relay), one mailbox replica (ROLE=mailbox)
// and a redis-server, each relaybox a host-mode instance on its own loopback ports, all sharing what
// the Secrets would hold (certificate, DKIM key, accounts, handoff password) as files, one smtp-sink
// as the upstream. The relays hand off to each other on their PORT_HANDOFF (HANDOFF_PEERS lists all
// three; each one skips its own).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { DOMAIN, HOSTNAME, Instance, PASSWORD, Sink, freePort, hashOf } from './instance.ts';
import { RedisServer } from './redis.ts';
import { TestCa } from './test-ca.ts';
import { newDkimKey } from '../../src/host/dkim-keys.ts';

export const HANDOFF_PASSWORD = 'handoff-secret-0123456789abcdef';
export const USERS = ['alice', 'bob', 'carol', 'dave'].map((name) => `${name}@${DOMAIN}`);

export interface TopologyOptions {
  relays?: number;
  /** Extra variables for every relay. */
  relayEnv?: Record<string, string>;
  mailboxEnv?: Record<string, string>;
}

export class Topology {
  readonly secrets: string;
  readonly ca: TestCa;
  readonly redis: RedisServer;
  readonly sink: Sink;
  readonly lmtpPort: number;
  readonly handoffPorts: number[];
  mailbox!: Instance;
  relays: Instance[] = [];
  private readonly options: TopologyOptions;

  private constructor(secrets: string, ca: TestCa, redis: RedisServer, sink: Sink, lmtpPort: number, handoffPorts: number[], options: TopologyOptions) {
    this.secrets = secrets;
    this.ca = ca;
    this.redis = redis;
    this.sink = sink;
    this.lmtpPort = lmtpPort;
    this.handoffPorts = handoffPorts;
    this.options = options;
  }

  static async start(options: TopologyOptions = {}): Promise<Topology> {
    const secrets = mkdtempSync('/tmp/rbsecrets-');
    const ca = new TestCa();
    const pair = ca.issue(HOSTNAME);
    writeFileSync(`${secrets}/users`, `# the accounts Secret\n${USERS.map((user) => `${user}:${hashOf(PASSWORD)}`).join('\n')}\n`, { mode: 0o600 });
    writeFileSync(`${secrets}/handoff-password`, `${HANDOFF_PASSWORD}\n`, { mode: 0o600 });
    mkdirSync(`${secrets}/dkim`, { mode: 0o700 });
    writeFileSync(`${secrets}/dkim/${DOMAIN}.relaybox.key`, await newDkimKey(1024), { mode: 0o600 });
    copyFileSync(pair.cert, `${secrets}/tls.crt`);
    copyFileSync(pair.key, `${secrets}/tls.key`);
    const relays = options.relays ?? 3;
    const handoffPorts: number[] = [];
    for (let i = 0; i < relays; i++) handoffPorts.push(await freePort());
    const topology = new Topology(secrets, ca, await RedisServer.start(), await Sink.start(), await freePort(), handoffPorts, options);
    topology.mailbox = await Instance.start(topology.mailboxEnv(), { sink: topology.sink });
    // One after the other: each start costs a couple of seconds of CPU on two cores.
    for (let i = 0; i < relays; i++) topology.relays.push(await Instance.start(topology.relayEnv(i), { sink: topology.sink }));
    return topology;
  }

  private common(): Record<string, string> {
    return {
      MAIL_USERS: '',
      MAIL_USERS_FILE: `${this.secrets}/users`,
      TLS_CERT_FILE: `${this.secrets}/tls.crt`,
      TLS_KEY_FILE: `${this.secrets}/tls.key`,
      REDIS_URL: this.redis.url,
    };
  }

  mailboxEnv(): Record<string, string> {
    return { ...this.common(), ROLE: 'mailbox', PORT_LMTP: String(this.lmtpPort), ...this.options.mailboxEnv };
  }

  relayEnv(index: number): Record<string, string> {
    return {
      ...this.common(),
      ROLE: 'relay',
      DKIM_KEY_DIR: `${this.secrets}/dkim`,
      SPAM_FILTER: 'off',
      MAILBOX_LMTP_HOST: `127.0.0.1:${this.lmtpPort}`,
      HANDOFF_PEERS: this.handoffPorts.map((port) => `127.0.0.1:${port}`).join(','),
      HANDOFF_PASSWORD_FILE: `${this.secrets}/handoff-password`,
      PORT_HANDOFF: String(this.handoffPorts[index]),
      ...this.options.relayEnv,
    };
  }

  get instances(): Instance[] {
    return [this.mailbox, ...this.relays].filter(Boolean);
  }

  /** Secrets that must never show in any replica's logs or HTTP bodies, beyond what Instance checks. */
  assertNoSecrets(): void {
    for (const instance of this.instances) {
      instance.assertNoSecrets();
      const everything = [...instance.lines, ...instance.bodies].join('\n');
      if (everything.includes(HANDOFF_PASSWORD)) throw new Error(`the handoff password appeared in the output of ${instance.stateDir}`);
      if (everything.includes(hashOf(PASSWORD))) throw new Error(`a password hash appeared in the output of ${instance.stateDir}`);
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(this.instances.map((instance) => instance.stop()));
    try {
      this.assertNoSecrets();
    } finally {
      for (const instance of this.instances) rmSync(instance.stateDir, { recursive: true, force: true });
      this.sink.remove();
      await this.redis.remove();
      this.ca.remove();
      rmSync(this.secrets, { recursive: true, force: true });
    }
  }
}

// Test instances: relaybox in host mode with its own STATE_DIR and loopback ports, relaying only to
// an smtp-sink on 127.0.0.1 (so nothing a test does can leave this machine).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { waitQueueEmpty } from './queue.ts';
import { Sink } from './sink.ts';
import { PASSWORD } from './smtp.ts';
import { freePort, waitFor } from './wait.ts';

export { PASSWORD, Sink, freePort, waitFor };

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = `${ROOT}dist/cli.js`;
export const DOMAIN = 'relaybox.test';
export const HOSTNAME = `mail.${DOMAIN}`;

function cli(): string {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  return CLI;
}

const hashCache = new Map<string, string>();
/** A SHA512-CRYPT hash made by Dovecot itself. */
export function hashOf(password: string): string {
  let hash = hashCache.get(password);
  if (!hash) {
    hash = execFileSync('doveadm', ['-O', 'pw', '-s', 'SHA512-CRYPT'], { input: `${password}\n${password}\n`, encoding: 'utf8' }).trim();
    hashCache.set(password, hash);
  }
  return hash;
}

export interface Ports {
  smtp: number;
  submission: number;
  submissions: number;
  imap: number;
  imaps: number;
  http: number;
}

export async function freePorts(): Promise<Ports> {
  return { smtp: await freePort(), submission: await freePort(), submissions: await freePort(), imap: await freePort(), imaps: await freePort(), http: await freePort() };
}

/** The environment of a test instance (host or container): loopback ports, the sink as upstream. */
export function instanceEnv(ports: Ports, sinkPort: number): Record<string, string> {
  return {
    MAIL_HOSTNAME: HOSTNAME,
    MAIL_DOMAINS: DOMAIN,
    MAIL_USERS: ['alice', 'bob'].map((name) => `${name}@${DOMAIN}:${hashOf(PASSWORD)}`).join('\n'),
    RELAY_HOST: `[127.0.0.1]:${sinkPort}`,
    BIND_ADDRESS: '127.0.0.1',
    PORT_SMTP: String(ports.smtp),
    PORT_SUBMISSION: String(ports.submission),
    PORT_SUBMISSIONS: String(ports.submissions),
    PORT_IMAP: String(ports.imap),
    PORT_IMAPS: String(ports.imaps),
    PORT_HTTP: String(ports.http),
  };
}

/** instanceEnv with its own STATE_DIR, for host mode. */
export function baseEnv(stateDir: string, ports: Ports, sinkPort: number): Record<string, string> {
  return { ...instanceEnv(ports, sinkPort), STATE_DIR: stateDir };
}

/**
 * Runs a relaybox CLI command to completion with exactly the given environment (plus PATH). A
 * command still running after `timeoutMs` (a `run` that should have refused to start) gets SIGTERM.
 */
export function runCli(args: string[], env: Record<string, string>, input?: string, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli(), ...args], { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGTERM' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(input ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The node flags the image runs relaybox with (docker/rootfs/usr/local/bin/relaybox), so host mode measures the same. */
export const NODE_FLAGS = /exec node (.*?) \/app\/dist\/cli\.js/.exec(readFileSync(`${ROOT}docker/rootfs/usr/local/bin/relaybox`, 'utf8'))?.[1]?.split(' ') ?? [];

export class Instance {
  readonly stateDir: string;
  readonly ports: Ports;
  readonly sink: Sink;
  readonly env: Record<string, string>;
  /** Every line the supervisor printed (stdout and stderr). */
  readonly lines: string[] = [];
  /** Every HTTP body this instance served to the tests. */
  readonly bodies: string[] = [];
  /** Secrets made at each start (the auth policy's API key), collected once the instance is ready. */
  private readonly startSecrets = new Set<string>();
  child: ChildProcess | undefined;
  exit: Promise<number | null> = Promise.resolve(null);

  private constructor(stateDir: string, ports: Ports, sink: Sink, env: Record<string, string>) {
    this.stateDir = stateDir;
    this.ports = ports;
    this.sink = sink;
    this.env = env;
  }

  /** Starts an instance (and its sink) and waits until /ready says 200. */
  static async start(overrides: Record<string, string> = {}, options: { waitReady?: boolean; sink?: Sink; stateDir?: string } = {}): Promise<Instance> {
    const stateDir = options.stateDir ?? mkdtempSync('/tmp/rbt-');
    const sink = options.sink ?? (await Sink.start());
    const ports = await freePorts();
    const env = { ...baseEnv(stateDir, ports, sink.port), ...overrides };
    const instance = new Instance(stateDir, ports, sink, env);
    instance.launch();
    if (options.waitReady !== false) await instance.waitReady();
    return instance;
  }

  launch(): void {
    const child = spawn(process.execPath, [...NODE_FLAGS, cli(), 'run'], { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => this.lines.push(line));
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => {
      if (signal) this.lines.push(`(test harness) relaybox ended by ${signal}`);
      resolve(code);
    }));
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.ports.http}${path}`;
  }

  async get(path: string): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
    const response = await fetch(this.url(path));
    const text = await response.text();
    this.bodies.push(text);
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown>, text };
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    await waitFor(`/ready on ${this.ports.http}`, timeoutMs, async () => {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) throw new Error(`relaybox exited with ${this.child.exitCode}:\n${this.lines.join('\n')}`);
      try {
        // Ready, and the optional daemons (the filter) up too: tests on port 25 expect a verdict, not 451.
        const response = await fetch(this.url('/ready'));
        const body = (await response.json()) as { degraded?: string[] };
        return (response.status === 200 && (body.degraded ?? []).length === 0) || undefined;
      } catch {
        return undefined;
      }
    });
    const policy = `${this.stateDir}/dovecot/auth-policy.conf`;
    const key = existsSync(policy) ? /^auth_policy_server_api_header = X-API-Key:(\S+)$/m.exec(readFileSync(policy, 'utf8'))?.[1] : undefined;
    if (key) this.startSecrets.add(key);
  }

  /** Resolves once Postfix has nothing left to deliver (see queue.ts). */
  waitQueueEmpty(timeoutMs = 30_000, options: { flush?: boolean } = {}): Promise<void> {
    return waitQueueEmpty(this.stateDir, timeoutMs, options);
  }

  /** Log lines parsed as JSON (non-JSON lines skipped). */
  logs(): Array<Record<string, unknown>> {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** SIGTERM and wait for the exit code. */
  async stop(): Promise<number | null> {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exit;
  }

  /** Secrets a test made while the instance ran (app passwords), checked like the configured ones. */
  private readonly madeSecrets = new Set<string>();

  rememberSecret(secret: string): void {
    this.madeSecrets.add(secret);
  }

  /** The configured secrets that must never appear in a log line or HTTP body. */
  secrets(): string[] {
    const users = (this.env.MAIL_USERS ?? '').split(/\s+/).filter(Boolean);
    const routePasswords = (this.env.RELAY_ROUTE_CREDENTIALS ?? '').split('\n').map((line) => line.slice(line.indexOf(':') + 1).trim());
    return [PASSWORD, ...users.map((entry) => entry.slice(entry.indexOf(':') + 1)), this.env.RELAY_PASSWORD ?? '', ...routePasswords, ...this.startSecrets, ...this.madeSecrets].filter((secret) => secret.length >= 6);
  }

  /** Throws when a configured password or hash shows up in what the instance printed or served. */
  assertNoSecrets(): void {
    const everything = [...this.lines, ...this.bodies].join('\n');
    for (const secret of this.secrets()) {
      if (everything.includes(secret)) throw new Error(`a secret (${secret.slice(0, 4)}...) appeared in the logs or HTTP bodies of ${this.stateDir}`);
    }
  }

  /** Stops the instance, checks secrets hygiene over everything it printed, and removes its files. */
  async destroy(): Promise<void> {
    await this.stop();
    this.sink.remove();
    rmSync(this.stateDir, { recursive: true, force: true });
    this.assertNoSecrets();
  }
}

/** Processes working inside a STATE_DIR: Postfix's run in the queue directory, Dovecot's in base_dir. */
export function processesIn(stateDir: string): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .flatMap((pid) => {
      try {
        const cwd = readlinkSync(`/proc/${pid}/cwd`);
        return cwd === stateDir || cwd.startsWith(`${stateDir}/`) ? [`${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()} (cwd ${cwd})`] : [];
      } catch {
        return [];
      }
    });
}

/**
 * Processes whose command line or environment names `path` (e.g. a STATE_DIR): what a start would
 * have spawned, even where the directory was never created (processesIn sees only working directories).
 */
export function processesMentioning(path: string): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .flatMap((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
        return cmdline.includes(path) || environ.includes(path) ? [`${pid} ${cmdline.replaceAll('\0', ' ').trim()}`] : [];
      } catch {
        return [];
      }
    });
}

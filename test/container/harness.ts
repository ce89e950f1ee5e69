// Shared harness for the container tests: engine discovery, one image build per build-context
// hash, the security options from compose.yaml, free ports, an smtp-sink upstream and
// container helpers. Everything runs with host networking and talks to 127.0.0.1 only.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { parse as parseYaml } from 'yaml';
import { startNpmMirror } from './npm-mirror.ts';
import { DOMAIN, PASSWORD, freePort, freePorts as instancePorts, instanceEnv, type Ports } from '../helpers/instance.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
const execFileP = promisify(execFile);
const LABEL = 'relaybox.test';

export function log(message: string): void {
  process.stderr.write(`# [container] ${message}\n`);
}

// ------------------------------------------------------------------ engine

let enginePromise: Promise<{ docker: Docker } | { reason: string }> | undefined;

async function findEngine(): Promise<{ docker: Docker } | { reason: string }> {
  const docker = new Docker();
  try {
    await docker.ping();
    return { docker };
  } catch (first) {
    // docker/engine.sh starts dockerd when we are root and it is installed.
    const r = spawnSync('bash', [join(ROOT, 'docker/engine.sh')], { encoding: 'utf8', timeout: 90_000 });
    if (r.status === 0) {
      try {
        await docker.ping();
        return { docker };
      } catch (err) {
        return { reason: `engine.sh succeeded but the engine is unreachable: ${(err as Error).message}` };
      }
    }
    const why = (r.stderr || r.error?.message || '').trim().split('\n').pop() || `engine.sh exited ${r.status}`;
    return { reason: `${(first as Error).message}; ${why}` };
  }
}

/** The one opt-out: without it, a missing Docker engine (or Compose) fails the container tests. */
export const ALLOW_NO_DOCKER = 'RELAYBOX_ALLOW_NO_DOCKER';

/**
 * A missing prerequisite (no Docker engine, no Compose): a failure, unless RELAYBOX_ALLOW_NO_DOCKER=1
 * is set, in which case the test is reported skipped with the reason and `undefined` is returned.
 */
export function missing(t: TestContext, reason: string): undefined {
  if (process.env[ALLOW_NO_DOCKER] === '1') {
    log(`skipped (${ALLOW_NO_DOCKER}=1): ${reason}`);
    t.skip(`${reason} (${ALLOW_NO_DOCKER}=1)`);
    return undefined;
  }
  throw new Error(`${reason}. The container tests must run; set ${ALLOW_NO_DOCKER}=1 to skip them on a machine without Docker`);
}

/** The Docker client; without a reachable engine the test fails (or is skipped with RELAYBOX_ALLOW_NO_DOCKER=1). */
export async function engine(t: TestContext): Promise<Docker | undefined> {
  enginePromise ??= findEngine();
  const found = await enginePromise;
  if ('docker' in found) return found.docker;
  return missing(t, `no Docker engine: ${found.reason}`);
}

// ------------------------------------------------------------------- image

/** Files of the build context (what .dockerignore lets through), relative to ROOT. */
export function buildContextFiles(): string[] {
  const files = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'docker/rspamd-cache.sh'];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (!(dir.startsWith('src') && entry.name.endsWith('.test.ts'))) files.push(path);
    }
  };
  walk('src');
  walk('docker/rootfs');
  return files;
}

export function buildContextHash(): string {
  const hash = createHash('sha256');
  for (const file of buildContextFiles()) {
    const full = join(ROOT, file);
    hash.update(`${file}\0${statSync(full).mode & 0o111 ? 'x' : '-'}\0`);
    hash.update(readFileSync(full));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}

const CACHE = process.env.RELAYBOX_CACHE ?? join(os.homedir(), '.cache/relaybox');

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(os.tmpdir(), `${name}.lock`);
  const deadline = Date.now() + 40 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      try {
        // A lock whose holder is gone (a test run that was killed) is taken over at once.
        const holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
        if (!processAlive(holder) || Date.now() - statSync(lock).mtimeMs > 30 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // no pid file yet (just created) or the lock is gone already
        if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 10_000 && !existsSync(join(lock, 'pid'))) rmSync(lock, { recursive: true, force: true });
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The image for the current build context, tagged relaybox:test-<hash>: built once, reused by every
 * test file and every later run while src/, the Dockerfile and the lockfile are unchanged.
 */
export async function ensureImage(docker: Docker): Promise<string> {
  // RELAYBOX_TEST_IMAGE: test an image built elsewhere instead of building one here.
  const given = process.env.RELAYBOX_TEST_IMAGE;
  if (given) {
    await docker.getImage(given).inspect().catch(() => {
      throw new Error(`RELAYBOX_TEST_IMAGE=${given} is not present locally`);
    });
    return given;
  }
  const tag = `relaybox:test-${buildContextHash()}`;
  const present = async () => docker.getImage(tag).inspect().then(() => true, () => false);
  if (await present()) return tag;
  return withLock('relaybox-image-build', async () => {
    if (await present()) return tag;
    if (!existsSync(join(ROOT, 'src/cli.ts'))) throw new Error('src/cli.ts is missing: nothing to build');
    const started = Date.now();
    const base = spawnSync('bash', [join(ROOT, 'docker/base-image.sh')], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 20 * 60_000 });
    if (base.status !== 0) throw new Error(`docker/base-image.sh failed (exit ${base.status})`);
    const mirror = await startNpmMirror();
    mkdirSync(CACHE, { recursive: true });
    const logFile = join(CACHE, `build-${tag.split(':')[1]}.log`);
    let output = '';
    try {
      log(`building ${tag} (npm through ${mirror.url}; log: ${logFile})`);
      const stream = await docker.buildImage(
        { context: ROOT, src: buildContextFiles() },
        { t: tag, networkmode: 'host', rm: true, forcerm: true, buildargs: { NPM_CONFIG_REGISTRY: mirror.url } },
      );
      await new Promise<void>((resolvePromise, reject) => {
        docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolvePromise()),
          (event: { stream?: string; error?: string; errorDetail?: { message?: string } }) => {
            if (event.stream) output += event.stream;
            if (event.error) output += `ERROR: ${event.error}\n`;
          },
        );
      });
    } catch (err) {
      writeFileSync(logFile, output);
      throw new Error(`image build failed: ${(err as Error).message}\n${output.split('\n').slice(-30).join('\n')}`);
    } finally {
      await mirror.close();
    }
    writeFileSync(logFile, output);
    if (!(await present())) throw new Error(`image build did not produce ${tag}:\n${output.split('\n').slice(-30).join('\n')}`);
    log(`built ${tag} in ${Math.round((Date.now() - started) / 1000)} s`);
    await removeOldTestImages(docker, tag);
    return tag;
  });
}

/** Earlier relaybox:test-* images (other build-context hashes): the vfs storage driver keeps full copies. */
async function removeOldTestImages(docker: Docker, keep: string): Promise<void> {
  const images = await docker.listImages({ filters: { reference: ['relaybox:test-*'] } }).catch(() => []);
  for (const image of images) {
    if ((image.RepoTags ?? []).includes(keep)) continue;
    for (const repoTag of image.RepoTags ?? []) {
      if (!repoTag.startsWith('relaybox:test-')) continue;
      await docker.getImage(repoTag).remove().catch(() => undefined); // still in use: left alone
    }
  }
}

// ------------------------------------------------------- compose security

export interface ComposeService {
  cap_drop?: string[];
  cap_add?: string[];
  security_opt?: string[];
  read_only?: boolean;
  tmpfs?: string[] | string;
  stop_grace_period?: string;
  stop_signal?: string;
  volumes?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  env_file?: string | string[];
  healthcheck?: { test?: string[] };
  [key: string]: unknown;
}

export function composeService(): ComposeService {
  const doc = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8')) as { services: Record<string, ComposeService> };
  const service = doc.services.relaybox;
  if (!service) throw new Error('compose.yaml has no service "relaybox"');
  return service;
}

/** Compose duration ("20s", "1m30s") in seconds. */
export function durationSeconds(value: string | undefined, fallback: number): number {
  if (!value) return fallback;
  let total = 0;
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)) {
    const k = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 }[unit as 'h'];
    total += Number(n) * k;
  }
  return total;
}

/** The HostConfig security options of compose.yaml's relaybox service. */
export function composeHostConfig(opts: { dropCap?: string } = {}): Docker.HostConfig & { stopTimeout: number } {
  const s = composeService();
  const tmpfs: Record<string, string> = {};
  for (const entry of typeof s.tmpfs === 'string' ? [s.tmpfs] : s.tmpfs ?? []) {
    const [path, options = ''] = entry.split(/:(.*)/s);
    tmpfs[path!] = options;
  }
  return {
    CapDrop: s.cap_drop ?? [],
    CapAdd: (s.cap_add ?? []).filter((c) => c !== opts.dropCap),
    SecurityOpt: s.security_opt ?? [],
    ReadonlyRootfs: s.read_only === true,
    Tmpfs: tmpfs,
    stopTimeout: durationSeconds(s.stop_grace_period, 10),
  };
}

// ------------------------------------------------------- ports, users, env
// The same as the host-mode tests use (test/helpers/instance.ts); only the STATE_DIR differs
// (the image's default, a volume).

export type { Ports };
export const USER = `alice@${DOMAIN}`;
export { PASSWORD };

/** `count` free loopback ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) ports.push(await freePort());
  return ports;
}

export const relayboxPorts = instancePorts;

export function relayboxEnv(ports: Ports, sinkPort: number, extra: Record<string, string> = {}): string[] {
  const env: Record<string, string> = { ...instanceEnv(ports, sinkPort), LOG_LEVEL: 'info', ...extra };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

// --------------------------------------------------------------- containers

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function createVolume(docker: Docker): Promise<string> {
  const name = `relaybox-test-${randomBytes(4).toString('hex')}`;
  await docker.createVolume({ Name: name, Labels: { [LABEL]: '1' } });
  return name;
}

export async function startRelaybox(
  docker: Docker,
  image: string,
  opts: { env: string[]; volume: string; dropCap?: string; name?: string },
): Promise<Docker.Container> {
  const { stopTimeout, ...security } = composeHostConfig({ dropCap: opts.dropCap });
  const container = await docker.createContainer({
    Image: image,
    name: opts.name ?? `relaybox-test-${randomBytes(4).toString('hex')}`,
    Env: opts.env,
    Labels: { [LABEL]: '1' },
    StopTimeout: stopTimeout,
    HostConfig: {
      ...security,
      NetworkMode: 'host',
      Binds: [`${opts.volume}:/var/lib/relaybox`],
    },
  });
  await container.start();
  return container;
}

export async function containerLogs(container: Docker.Container): Promise<string> {
  const buf = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  // Demultiplex the 8-byte-header frames (no TTY).
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return out;
}

export async function httpStatus(port: number, path: string): Promise<number | string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch (err) {
    return ((err as Error).cause as { code?: string } | undefined)?.code ?? (err as Error).message;
  }
}

/** Waits for GET /ready to answer 200; fails early, with the logs, if the container exits. */
export async function waitReady(container: Docker.Container, httpPort: number, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  let last: number | string = '';
  while (Date.now() - started < timeoutMs) {
    last = await httpStatus(httpPort, '/ready');
    if (last === 200) return Date.now() - started;
    const state = (await container.inspect()).State;
    if (!state.Running) {
      throw new Error(`container exited (code ${state.ExitCode}) before /ready:\n${await containerLogs(container)}`);
    }
    await sleep(250);
  }
  throw new Error(`/ready not 200 after ${timeoutMs} ms (last: ${last}); logs:\n${(await containerLogs(container)).slice(-6000)}`);
}

export async function execIn(container: Docker.Container, cmd: string[]): Promise<{ code: number; output: string }> {
  const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((r) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => r());
    stream.on('close', () => r());
  });
  const buf = Buffer.concat(chunks);
  let output = '';
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    output += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, output };
}

export async function removeContainer(container: Docker.Container | undefined): Promise<void> {
  if (!container) return;
  await container.remove({ force: true, v: false }).catch(() => undefined);
}

export async function removeVolume(docker: Docker, name: string | undefined): Promise<void> {
  if (!name) return;
  await docker.getVolume(name).remove().catch(() => undefined);
}

/** Runs a command on the host; resolves with exit code and output (never throws). */
export async function host(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { cwd: opts.cwd, encoding: 'utf8' });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 127, output: (e.stdout ?? '') + (e.stderr ?? '') || e.message };
  }
}

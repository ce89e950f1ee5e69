// The one container fixture: a relaybox container from the image under test, started with
// compose.yaml's security options and host networking on free loopback ports, an smtp-sink upstream,
// a fresh volume for STATE_DIR; everything removed again when the test ends (t.after).
import type { TestContext } from 'node:test';
import type Docker from 'dockerode';
import { QUEUES } from '../helpers/queue.ts';
import { Sink } from '../helpers/sink.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  containerLogs, createVolume, engine, ensureImage, execIn, httpStatus, log, relayboxEnv, relayboxPorts,
  removeContainer, removeVolume, startRelaybox, waitReady, type Ports,
} from './harness.ts';

export interface RelayboxOptions {
  /** Added to the test environment (relayboxEnv); a variable set to undefined is left out. */
  env?: Record<string, string | undefined>;
  /** The upstream sink running (default) or down (mail to it is deferred). */
  sink?: 'up' | 'down';
  /** Wait for /ready 200 (default); false for a container that is expected to exit. */
  waitReady?: boolean;
  /** Files written into the volume (STATE_DIR, /var/lib/relaybox) before the first start: name -> content. */
  volumeFiles?: Record<string, string>;
}

export interface Relaybox {
  docker: Docker;
  image: string;
  ports: Ports;
  sink: Sink;
  volume: string;
  env: string[];
  /** The current container (replace() starts another on the same volume). */
  container: Docker.Container;
  logs(): Promise<string>;
  exec(cmd: string[]): Promise<{ code: number; output: string }>;
  /** GET on the HTTP port: the status, or the connection error. */
  status(path: string): Promise<number | string>;
  /** Removes the current container (stop it first for a clean stop) and starts a new one on the same volume and environment. */
  replace(): Promise<void>;
  /** Files in the Postfix queue inside the container. */
  queued(): Promise<number>;
  waitQueueEmpty(timeoutMs?: number): Promise<void>;
}

/** Undefined when there is no Docker engine and RELAYBOX_ALLOW_NO_DOCKER=1 (the test is then skipped). */
export async function withRelaybox(t: TestContext, options: RelayboxOptions = {}): Promise<Relaybox | undefined> {
  const docker = await engine(t);
  if (!docker) return undefined;
  const image = await ensureImage(docker);
  const ports = await relayboxPorts();
  const sink = await Sink.create();
  const containers: Docker.Container[] = [];
  let volume: string | undefined;
  t.after(async () => {
    if (process.env.RELAYBOX_TEST_KEEP) log(`kept containers ${containers.map((c) => c.id.slice(0, 12)).join(' ')} and volume ${volume}`);
    else {
      for (const container of containers) await removeContainer(container);
      await removeVolume(docker, volume);
    }
    await sink.dispose();
  });
  if (options.sink !== 'down') await sink.resume();
  volume = await createVolume(docker);
  // The container's root filesystem is read-only: a file it must read (a CA, say) goes into the volume.
  for (const [name, content] of Object.entries(options.volumeFiles ?? {})) {
    await docker.run(image, ['sh', '-c', `printf "%s" "$CONTENT" > /var/lib/relaybox/${name}`], process.stderr, {
      Env: [`CONTENT=${content}`],
      HostConfig: { Binds: [`${volume}:/var/lib/relaybox`], AutoRemove: true },
    });
  }
  const extra = Object.fromEntries(Object.entries(options.env ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const dropped = Object.entries(options.env ?? {}).filter(([, value]) => value === undefined).map(([name]) => `${name}=`);
  const env = relayboxEnv(ports, sink.port, extra).filter((entry) => !dropped.some((prefix) => entry.startsWith(prefix)));
  const start = async () => {
    const container = await startRelaybox(docker, image, { env, volume: volume! });
    containers.push(container);
    if (options.waitReady !== false) await waitReady(container, ports.http, 90_000);
    return container;
  };

  const box: Relaybox = {
    docker,
    image,
    ports,
    sink,
    volume,
    env,
    container: await start(),
    logs: () => containerLogs(box.container),
    exec: (cmd) => execIn(box.container, cmd),
    status: (path) => httpStatus(ports.http, path),
    async replace() {
      await removeContainer(box.container);
      box.container = await start();
    },
    async queued() {
      // find's own exit status (not wc's at the end of a pipe): a queue directory it cannot read is an
      // error, not 0. Complete queue files only (owner-execute bit), as helpers/queue.ts counts them.
      const r = await execIn(box.container, ['find', ...QUEUES.map((queue) => `/var/lib/relaybox/queue/${queue}`), '-type', 'f', '-perm', '-u=x', '-printf', 'queued\n']);
      if (r.code !== 0) throw new Error(`counting the queue failed (${r.code}): ${r.output}`);
      return r.output.split('\n').filter((line) => line.trim() === 'queued').length;
    },
    async waitQueueEmpty(timeoutMs = 60_000) {
      await waitFor('the queue in the container to be empty', timeoutMs, async () => ((await box.queued()) === 0 ? true : undefined), 250);
    },
  };
  return box;
}

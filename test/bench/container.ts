// Container start -> ready/healthy, when a Docker engine answers and a relaybox image is present.
// The image: $RELAYBOX_BENCH_IMAGE, else the newest local relaybox:test*, relaybox:local or
// relaybox:latest. Nothing is built or pulled here.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DOMAIN, PASSWORD, freePorts, hashOf, instanceEnv, type Sink } from '../helpers/instance.ts';
import { sleep } from './stats.ts';

const run = promisify(execFile);

export interface ContainerResult {
  ready: number[];
  healthy: number[];
  /** Why nothing was measured, or which image was. */
  note: string;
  /** How "healthy" was made quick: start_interval (Docker API >= 1.44) or a short interval. */
  healthNote: string;
  errors: string[];
}

async function docker(args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: timeoutMs, encoding: 'utf8' });
  return stdout.trim();
}

async function findImage(): Promise<string | undefined> {
  const given = process.env.RELAYBOX_BENCH_IMAGE;
  if (given) return given;
  const list = await docker(['images', 'relaybox', '--format', '{{.Repository}}:{{.Tag}}']);
  return list.split('\n').find((tag) => /^relaybox:(test|local$|latest$)/.test(tag));
}

/** Polls `check` every `everyMs` until it is true; elapsed ms since t0, or NaN on timeout. */
async function until(t0: number, timeoutMs: number, everyMs: number, check: () => Promise<boolean>): Promise<number> {
  while (performance.now() - t0 < timeoutMs) {
    if (await check().catch(() => false)) return performance.now() - t0;
    await sleep(everyMs);
  }
  return Number.NaN;
}

export async function containerStartTrials(trials: number, sink: Sink, log: (m: string) => void): Promise<ContainerResult> {
  const out: ContainerResult = { ready: [], healthy: [], note: '', healthNote: '', errors: [] };
  try {
    await docker(['info', '--format', '{{.ServerVersion}}'], 30_000);
  } catch {
    out.note = 'not measured: no engine';
    return out;
  }
  const image = await findImage().catch(() => undefined);
  if (!image) {
    out.note = 'not measured: no relaybox image (build one, or set RELAYBOX_BENCH_IMAGE)';
    return out;
  }
  let imageId = '?';
  let fullId = image;
  try {
    // By ID: the tag may be moved to a newer build by other work on the machine during the run.
    fullId = await docker(['image', 'inspect', image, '--format', '{{.Id}}']);
    imageId = fullId.replace('sha256:', '').slice(0, 12);
  } catch {
    out.note = `not measured: image ${image} not present`;
    return out;
  }
  // compose's healthcheck `start_interval` (docker run --health-start-interval) needs API 1.44 (Engine 25).
  const api = await docker(['version', '--format', '{{.Server.APIVersion}}']).catch(() => '0');
  const [major, minor] = api.split('.').map(Number);
  const startInterval = (major ?? 0) > 1 || ((major ?? 0) === 1 && (minor ?? 0) >= 44);
  const healthArgs = startInterval ? ['--health-interval', '30s', '--health-start-period', '30s', '--health-start-interval', '100ms'] : ['--health-interval', '250ms'];
  out.healthNote = startInterval
    ? `with the image's 30 s interval and \`--health-start-interval=100ms\` (compose: \`start_interval\`) during a 30 s start period`
    : `this engine (API ${api}) has no \`start_interval\` (needs API 1.44, Engine 25): measured with \`--health-interval=250ms\`; with the image's 30 s interval healthy would come at ≈30 s`;
  const images = [`\`${image}\` (${imageId})`];
  const describe = () => `image ${images.join(', then ')}, host network, compose.yaml's security options, fresh anonymous volume each trial`;
  out.note = describe();
  let replaced = 0;
  for (let i = 0; i < trials; i++) {
    const ports = await freePorts();
    const env = { ...instanceEnv(ports, sink.port), MAIL_USERS: `alice@${DOMAIN}:${hashOf(PASSWORD)}` };
    let id = '';
    try {
      id = await docker([
        'create', '--network', 'host', '--read-only', '--tmpfs', '/tmp:mode=1777,size=16m', '--tmpfs', '/run:mode=0755,size=16m',
        '--security-opt', 'no-new-privileges:true', '--cap-drop', 'ALL',
        ...['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'NET_BIND_SERVICE', 'KILL', 'SYS_CHROOT'].flatMap((cap) => ['--cap-add', cap]),
        '-v', '/var/lib/relaybox', ...healthArgs, '--label', 'relaybox.bench=1',
        ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        fullId,
      ]);
      const t0 = performance.now();
      await docker(['start', id]);
      const url = `http://127.0.0.1:${ports.http}/ready`;
      const ready = await until(t0, 60_000, 10, async () => (await fetch(url, { signal: AbortSignal.timeout(1000) })).status === 200);
      const healthy = await until(t0, 60_000, 50, async () => (await docker(['inspect', '-f', '{{.State.Health.Status}}', id])) === 'healthy');
      if (Number.isFinite(ready)) out.ready.push(ready);
      else out.errors.push('container: /ready not 200 within 60 s');
      if (Number.isFinite(healthy)) out.healthy.push(healthy);
      log(`container start->ready ${i + 1}/${trials}: ${Math.round(ready)} ms, healthy ${Math.round(healthy)} ms`);
    } catch (error) {
      // execFile's message repeats the whole command line; the reason is on stderr.
      const e = error as Error & { stderr?: string };
      const reason = (e.stderr?.trim() || e.message).split('\n')[0]!;
      // Other work on the machine may replace the test image between trials: take the new one and redo the trial.
      const next = /No such image|not found/i.test(reason) && replaced < 3 ? await findImage().catch(() => undefined) : undefined;
      const nextId = next ? await docker(['image', 'inspect', next, '--format', '{{.Id}}']).catch(() => undefined) : undefined;
      if (next && nextId && nextId !== fullId) {
        replaced += 1;
        fullId = nextId;
        images.push(`\`${next}\` (${nextId.replace('sha256:', '').slice(0, 12)}, the first was removed during the run)`);
        out.note = describe();
        log(`container: image replaced during the run, now ${next}`);
        i -= 1;
      } else out.errors.push(`container: ${reason}`);
    } finally {
      if (id) await docker(['rm', '-f', '-v', id]).catch(() => undefined);
    }
  }
  return out;
}

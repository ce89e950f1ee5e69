// Recovery after kill -9 of one daemon process: until the supervisor has started the daemon again
// (not for Dovecot's auth process, which Dovecot's master respawns), /ready is 200 and a fresh
// STARTTLS + AUTH PLAIN succeeds. A fresh supervisor per trial, so its backoff is not what is measured.
import { rmSync } from 'node:fs';
import { PASSWORD, type Instance, type Sink } from '../helpers/instance.ts';
import { statePaths } from '../../src/render/paths.ts';
import { authOnce } from './loadgen.ts';
import { P, USER, log, onCleanup, readyAfter, readyBody, startInstance } from './common.ts';
import { comm, groupMembers, readPid } from './proc.ts';
import { fmt, sleep } from './stats.ts';

export const VICTIMS = ['postfix master', 'dovecot master', 'dovecot auth', 'opendkim'] as const;
export type Victim = (typeof VICTIMS)[number];

export interface RecoveryResults {
  times: Record<Victim, number[]>;
  notReadySeen: Record<Victim, number>;
  restarts: Record<Victim, number>;
  errors: string[];
}

const DAEMON: Record<Victim, string> = { 'postfix master': 'postfix', 'dovecot master': 'dovecot', 'dovecot auth': 'dovecot', opendkim: 'opendkim' };
const TIMEOUT_MS = 30_000;

function victimPid(inst: Instance, victim: Victim): number | undefined {
  const paths = statePaths(inst.stateDir);
  if (victim === 'postfix master') return readPid(paths.masterPid);
  if (victim === 'opendkim') return readPid(paths.opendkimPid);
  const dovecot = readPid(`${paths.dovecotBase}/master.pid`);
  if (victim === 'dovecot master' || dovecot === undefined) return dovecot;
  return groupMembers(dovecot, 'auth')[0];
}

const record = <T>(make: () => T) => Object.fromEntries(VICTIMS.map((v) => [v, make()])) as Record<Victim, T>;

export async function recoveryTrials(sink: Sink): Promise<RecoveryResults> {
  const out: RecoveryResults = { times: record(() => []), notReadySeen: record(() => 0), restarts: record(() => 0), errors: [] };
  const inst = await startInstance({}, { sink });
  onCleanup(() => inst.stop().then(() => rmSync(inst.stateDir, { recursive: true, force: true })));
  const port = inst.ports.submission;
  for (const victim of VICTIMS) {
    for (let i = 0; i < P.recoveryTrials; i++) {
      try {
        await inst.stop();
        inst.lines.length = 0;
        inst.launch();
        await readyAfter(inst, performance.now());
        if (!(await authOnce(port, USER, PASSWORD, 5000))) throw new Error('AUTH failed before the kill');
        await sleep(200);
        const daemon = DAEMON[victim];
        const before = (await readyBody(inst)).body.daemons?.[daemon]?.restarts ?? 0;
        const pid = victimPid(inst, victim);
        if (pid === undefined) throw new Error(`no ${victim} process found`);
        if (victim === 'dovecot auth' && comm(pid) !== 'auth') throw new Error(`pid ${pid} is ${comm(pid)}, not auth`);
        const t0 = performance.now();
        process.kill(pid, 'SIGKILL');
        let sawNotReady = false;
        for (;;) {
          if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`not recovered within ${TIMEOUT_MS} ms`);
          const { status, body } = await readyBody(inst);
          if (status !== 200) sawNotReady = true;
          const restarted = (body.daemons?.[daemon]?.restarts ?? 0) > before;
          if (status === 200 && (victim === 'dovecot auth' || restarted) && (await authOnce(port, USER, PASSWORD, 3000))) {
            out.times[victim].push(performance.now() - t0);
            if (sawNotReady) out.notReadySeen[victim] += 1;
            if (restarted) out.restarts[victim] += 1;
            break;
          }
          await sleep(20);
        }
      } catch (error) {
        out.errors.push(`${victim}: ${(error as Error).message}`);
      }
      log(`recovery ${victim} ${i + 1}/${P.recoveryTrials}: ${fmt(out.times[victim].at(-1) ?? Number.NaN)} ms`);
    }
  }
  await inst.stop();
  rmSync(inst.stateDir, { recursive: true, force: true });
  return out;
}

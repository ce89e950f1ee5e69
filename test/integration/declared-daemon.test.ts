// A daemon is one declaration: this test declares two small daemons of its own (a node program that
// listens on a unix socket and forks a child, like a master) and runs them under the real
// supervisor: started in dependency order, probed, restarted after kill -9, stopped with nothing left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { pino } from 'pino';
import { pollUntil } from '../../src/daemons/daemon.ts';
import type { DaemonDeclaration } from '../../src/daemons/declaration.ts';
import { groupMembers, processGroup } from '../../src/host/processes.ts';
import type { ProbeResult } from '../../src/protocol/probes.ts';
import { Supervisor } from '../../src/supervision/supervisor.ts';
import { waitFor } from '../helpers/instance.ts';

// Listens on argv[1] after argv[4] ms, answers "hello <name>" to every connection, writes its pid to
// argv[2] once listening, and keeps a child process (its "worker") in its process group.
const PROGRAM = `
const [socket, pidFile, name, delay] = process.argv.slice(1);
const { createServer } = require('node:net');
const { writeFileSync, rmSync } = require('node:fs');
const { spawn } = require('node:child_process');
spawn('sleep', ['1000'], { stdio: 'ignore' });
rmSync(socket, { force: true });
setTimeout(() => createServer((c) => c.end('hello ' + name + '\\n')).listen(socket, () => {
  writeFileSync(pidFile, String(process.pid));
  console.log(name + ': listening');
}), Number(delay));
process.on('SIGTERM', () => process.exit(0));
`;

function greet(socket: string): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (ok: boolean, error?: string) => resolve({ ok, ...(error ? { error } : {}), latencyMs: Math.round(performance.now() - started), checkedAt: new Date().toISOString() });
    const client = connect(socket);
    let text = '';
    client.on('data', (chunk) => (text += chunk));
    client.on('end', () => done(text.startsWith('hello'), text.startsWith('hello') ? undefined : `said ${JSON.stringify(text)}`));
    client.on('error', (error) => done(false, error.message));
  });
}

function tinyDaemon(dir: string, name: string, needs: string[], started: string[], startDelayMs = 0): DaemonDeclaration {
  const socket = `${dir}/${name}.sock`;
  const pidFile = `${dir}/${name}.pid`;
  return {
    name,
    needs,
    command: process.execPath,
    args: ['-e', PROGRAM, socket, pidFile, name, String(startDelayMs)],
    parseLine: (line) => ({ level: 'info', msg: line }),
    prepare: () => rmSync(pidFile, { force: true }),
    waitStarted: async (signal) => {
      await pollUntil(`${name} to listen`, signal, 10_000, async () => (await greet(socket)).ok);
      started.push(name);
    },
    probes: [{ name: `${name}-greeting`, run: () => greet(socket) }],
    stop: { gracefully: async (pid) => void process.kill(pid, 'SIGTERM'), graceMs: 1000 },
    extraGroups: () => [],
  };
}

const pidOf = (dir: string, name: string) => Number(readFileSync(`${dir}/${name}.pid`, 'utf8'));

test('a declared daemon is started after what it needs, probed, restarted after kill -9 and stopped', async () => {
  const dir = mkdtempSync('/tmp/rbdaemon-');
  const started: string[] = [];
  const lines: string[] = [];
  // Declared in the "wrong" order, and store is slow to start: only an order derived from `needs`
  // starts front after store is up.
  const front = tinyDaemon(dir, 'front', ['store'], started);
  const store = tinyDaemon(dir, 'store', [], started, 300);
  const supervisor = new Supervisor({ declarations: [front, store], listeners: [], probeHost: '127.0.0.1', restartBudget: 10, log: pino({ level: 'silent' }) });
  supervisor.onLogLine((daemon, line) => lines.push(`${daemon}: ${line.msg}`));
  const groups: number[] = [];
  try {
    await supervisor.start();
    assert.deepEqual(started, ['store', 'front']);
    await waitFor('/ready verdict', 5000, async () => {
      await supervisor.probeOnce();
      return supervisor.readiness().ready || undefined;
    });
    assert.deepEqual(Object.keys(supervisor.readiness().checks).sort(), ['front-greeting', 'store-greeting']);
    assert.ok(lines.includes('front: front: listening'), 'the daemon output reaches the log listeners');

    const pid = pidOf(dir, 'front');
    const group = processGroup(pid)!;
    assert.ok(groupMembers([group]).length >= 2, 'the daemon and its worker');
    process.kill(pid, 'SIGKILL');
    await waitFor('front to be restarted', 10_000, () => {
      const status = supervisor.statuses().front!;
      return status.restarts === 1 && status.state === 'running' ? true : undefined;
    });
    assert.notEqual(pidOf(dir, 'front'), pid);
    assert.deepEqual(groupMembers([group]), [], "the killed master's worker was ended with its group");
    assert.equal(supervisor.statuses().store!.restarts, 0);
    await waitFor('ready again', 5000, async () => {
      await supervisor.probeOnce();
      return supervisor.readiness().ready || undefined;
    });
    // Both daemons' process groups as they run now, each with its worker.
    for (const name of ['front', 'store']) {
      const running = processGroup(pidOf(dir, name))!;
      assert.ok(groupMembers([running]).length >= 2, `${name} and its worker`);
      groups.push(running);
    }
  } finally {
    await supervisor.stop();
  }
  assert.equal(groups.length, 2);
  assert.deepEqual(groupMembers(groups), [], 'every member of both process groups (masters and workers) is gone');
  assert.deepEqual(Object.values(supervisor.statuses()).map((s) => s.state), ['stopped', 'stopped']);
  rmSync(dir, { recursive: true, force: true });
});

test('a failing check is held against the daemon it depends on, not its own', async () => {
  const dir = mkdtempSync('/tmp/rbdaemon-');
  const front = tinyDaemon(dir, 'front', ['store'], []);
  const store = tinyDaemon(dir, 'store', [], []);
  // front's check needs store too, as Postfix's submission port needs Dovecot's auth socket.
  front.probes.push({ name: 'front-through-store', run: () => greet(`${dir}/store.sock`) });
  const supervisor = new Supervisor({ declarations: [front, store], listeners: [], probeHost: '127.0.0.1', restartBudget: 10, log: pino({ level: 'silent' }) });
  try {
    await supervisor.start();
    rmSync(`${dir}/store.sock`);
    await supervisor.probeOnce();
    const verdict = supervisor.readiness();
    assert.equal(verdict.ready, false);
    assert.equal(verdict.checks['front-through-store']?.cause, 'store fails store-greeting');
    assert.equal(verdict.checks['store-greeting']?.cause, undefined);
    await waitFor('store to be restarted for its own failing check', 15_000, async () => {
      await supervisor.probeOnce();
      return supervisor.statuses().store!.restarts === 1 || undefined;
    });
    assert.equal(supervisor.statuses().front!.restarts, 0, 'front was not restarted for what store caused');
  } finally {
    await supervisor.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

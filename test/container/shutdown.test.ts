// `docker stop` is clean and quick, and mail queued while the upstream is down survives a stop and
// a new container on the same volume: all of it arrives, exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PASSWORD, USER, Sink, composeHostConfig, containerLogs, createVolume, engineOrSkip, ensureImage, freePorts, log,
  relayboxEnv, relayboxPorts, removeContainer, removeVolume, startRelaybox, waitReady,
} from './harness.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

test('container: docker stop is clean and no queued mail is lost', { timeout: 30 * 60_000 }, async (t) => {
  const docker = await engineOrSkip(t);
  if (!docker) return;
  const image = await ensureImage(docker);
  const grace = composeHostConfig().stopTimeout;
  const ports = await relayboxPorts();
  const [sinkPort] = (await freePorts(1)) as [number];
  const sink = new Sink(sinkPort); // not started: the upstream is down
  const volume = await createVolume(docker);
  const env = relayboxEnv(ports, sinkPort);
  let first = await startRelaybox(docker, image, { env, volume });
  let second: Awaited<ReturnType<typeof startRelaybox>> | undefined;
  t.after(async () => {
    await removeContainer(first);
    await removeContainer(second);
    await removeVolume(docker, volume);
    await sink.dispose();
  });
  await waitReady(first, ports.http, 90_000);

  const subjects = [1, 2, 3].map((i) => `queued-${i}-${Date.now()}`);
  await t.test('3 messages accepted (250) while the upstream is down', async () => {
    const { client } = await SmtpClient.connect(ports.submission);
    try {
      await client.ehlo();
      await client.starttls();
      assert.equal((await client.authPlain(USER, PASSWORD)).code, 235);
      for (const subject of subjects) {
        const { final: r } = await client.send(USER, ['carol@outside.example'], message(USER, 'carol@outside.example', subject));
        assert.equal(r.code, 250, r.text);
        await client.cmd('RSET');
      }
    } finally {
      await client.quit();
    }
  });

  await t.test(`docker stop exits 0 well inside the ${grace} s grace period`, async () => {
    const started = Date.now();
    await first.stop({ t: grace });
    const took = (Date.now() - started) / 1000;
    const state = (await first.inspect()).State;
    log(`docker stop took ${took.toFixed(1)} s, exit code ${state.ExitCode}`);
    t.diagnostic(`docker stop: ${took.toFixed(1)} s, exit ${state.ExitCode}`);
    assert.equal(state.ExitCode, 0, `exit code ${state.ExitCode}; logs:\n${(await containerLogs(first)).slice(-4000)}`);
    assert.ok(took < grace * 0.75, `stop took ${took.toFixed(1)} s of a ${grace} s grace period`);
    assert.equal(state.OOMKilled, false);
  });

  await t.test('a new container on the same volume delivers all 3 exactly once', async () => {
    assert.equal(sink.messages().length, 0, 'nothing can have arrived while the upstream was down');
    await sink.start();
    second = await startRelaybox(docker, image, { env, volume });
    await waitReady(second, ports.http, 90_000);
    const started = Date.now();
    const arrived = await sink.waitFor(subjects, 120_000);
    const logs = await containerLogs(second);
    assert.ok(arrived, `queued mail not delivered within 120 s of the restart (${subjects.filter((s) => sink.count(s) === 0).join(', ')} missing); logs:\n${logs.slice(-4000)}`);
    log(`queued mail delivered ${Date.now() - started} ms after the new container was ready`);
    // Give a duplicate the chance to show up before counting.
    await new Promise((r) => setTimeout(r, 3000));
    for (const s of subjects) assert.equal(sink.count(s), 1, `${s} arrived ${sink.count(s)} times`);
    assert.equal(sink.messages().length, 3);
  });
});

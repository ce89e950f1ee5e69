// `docker stop` is clean, and mail queued while the upstream is down survives a stop and a new
// container on the same volume: all of it arrives, exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PASSWORD, USER, composeHostConfig, log } from './harness.ts';
import { withRelaybox } from './fixture.ts';
import { gauge } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

test('container: docker stop is clean and no queued mail is lost', { timeout: 30 * 60_000 }, async (t) => {
  const box = await withRelaybox(t, { sink: 'down' });
  if (!box) return;
  const { ports, sink } = box;
  const grace = composeHostConfig().stopTimeout;

  const subjects = [1, 2, 3].map((i) => `queued-${i}-${Date.now()}`);
  await t.test('3 messages accepted (250) while the upstream is down, and held in the deferred queue', async () => {
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
    // Delivery was tried and failed (connection refused): all three wait in the deferred queue.
    await waitFor('3 messages in the deferred queue', 60_000, async () => {
      const text = await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text();
      return gauge(text, 'relaybox_queue_messages', { queue: 'deferred' }) === 3 || undefined;
    }, 250);
    assert.equal(await box.queued(), 3);
  });

  await t.test(`docker stop exits 0 within the ${grace} s grace period`, async () => {
    const started = Date.now();
    await box.container.stop({ t: grace });
    const took = (Date.now() - started) / 1000;
    const state = (await box.container.inspect()).State;
    t.diagnostic(`docker stop: ${took.toFixed(1)} s, exit ${state.ExitCode}`);
    // Exit 0 means the supervisor stopped by itself: Docker's SIGKILL after the grace period gives 137.
    assert.equal(state.ExitCode, 0, `exit code ${state.ExitCode}; logs:\n${(await box.logs()).slice(-4000)}`);
    assert.equal(state.OOMKilled, false);
    assert.match(await box.logs(), /"event":"stopped"/, 'the supervisor logged its clean stop');
  });

  await t.test('a new container on the same volume delivers all 3 exactly once', async () => {
    await sink.resume();
    await box.replace();
    const started = Date.now();
    const arrived = await sink.waitFor(subjects, 120_000);
    assert.ok(arrived, `queued mail not delivered within 120 s of the restart (${subjects.filter((s) => sink.count(s) === 0).join(', ')} missing); logs:\n${(await box.logs()).slice(-4000)}`);
    log(`queued mail delivered ${Date.now() - started} ms after the new container was ready`);
    // Nothing left to deliver: no duplicate can arrive after this.
    await box.waitQueueEmpty();
    for (const s of subjects) assert.equal(sink.count(s), 1, `${s} arrived ${sink.count(s)} times`);
    assert.equal(sink.messages().length, 3);
  });
});

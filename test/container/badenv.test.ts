// A bad environment: the container exits with code 2 and its log names every bad variable
// (as NAME=...), and no valid one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  containerLogs, createVolume, engineOrSkip, ensureImage, freePorts, relayboxEnv, relayboxPorts,
  removeContainer, removeVolume, sleep, startRelaybox,
} from './harness.ts';

test('container: a bad environment exits 2 and names the variables', { timeout: 30 * 60_000 }, async (t) => {
  const docker = await engineOrSkip(t);
  if (!docker) return;
  const image = await ensureImage(docker);
  const ports = await relayboxPorts();
  const [sinkPort] = (await freePorts(1)) as [number];
  const volume = await createVolume(docker);
  const env = relayboxEnv(ports, sinkPort, { MAIL_HOSTNAME: 'not_a_host', PORT_SMTP: '99999', RELAY_HOST: 'nope:port' });
  const container = await startRelaybox(docker, image, { env, volume });
  t.after(async () => {
    await removeContainer(container);
    await removeVolume(docker, volume);
  });
  const deadline = Date.now() + 30_000;
  let state = (await container.inspect()).State;
  while (state.Running && Date.now() < deadline) {
    await sleep(200);
    state = (await container.inspect()).State;
  }
  const logs = await containerLogs(container);
  assert.equal(state.Running, false, `still running after 30 s with a bad environment:\n${logs.slice(-3000)}`);
  assert.equal(state.ExitCode, 2, `exit code ${state.ExitCode}:\n${logs}`);
  for (const variable of ['MAIL_HOSTNAME', 'PORT_SMTP', 'RELAY_HOST']) {
    assert.match(logs, new RegExp(`\\b${variable}=`), `docker logs does not name ${variable}:\n${logs}`);
  }
  for (const good of ['PORT_SUBMISSION', 'MAIL_DOMAINS']) {
    assert.doesNotMatch(logs, new RegExp(`\\b${good}=`), `docker logs blames the valid ${good}:\n${logs}`);
  }
});

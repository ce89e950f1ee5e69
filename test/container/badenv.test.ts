// A bad environment: the container exits with code 2 and its log names every bad variable
// (as NAME=...), and no valid one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withRelaybox } from './fixture.ts';
import { waitFor } from '../helpers/wait.ts';

test('container: a bad environment exits 2 and names the variables', { timeout: 30 * 60_000 }, async (t) => {
  const box = await withRelaybox(t, { env: { MAIL_HOSTNAME: 'not_a_host', PORT_SMTP: '99999', RELAY_HOST: 'nope:port' }, waitReady: false });
  if (!box) return;
  const state = await waitFor('the container to exit', 30_000, async () => {
    const current = (await box.container.inspect()).State;
    return current.Running ? undefined : current;
  }, 200).catch(async () => assert.fail(`still running after 30 s with a bad environment:\n${(await box.logs()).slice(-3000)}`));
  const logs = await box.logs();
  assert.equal(state.ExitCode, 2, `exit code ${state.ExitCode}:\n${logs}`);
  for (const variable of ['MAIL_HOSTNAME', 'PORT_SMTP', 'RELAY_HOST']) {
    assert.match(logs, new RegExp(`\\b${variable}=`), `docker logs does not name ${variable}:\n${logs}`);
  }
  for (const good of ['PORT_SUBMISSION', 'MAIL_DOMAINS']) {
    assert.doesNotMatch(logs, new RegExp(`\\b${good}=`), `docker logs blames the valid ${good}:\n${logs}`);
  }
});

// /metrics: drive known traffic, scrape, and check every counter moved by exactly that much.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, Instance, PASSWORD, waitFor } from '../helpers/instance.ts';
import { counter, gauge, scrape as scrapeUrl } from '../helpers/metrics.ts';
import { SmtpClient, authenticated, message } from '../helpers/smtp.ts';

const ALICE = `alice@${DOMAIN}`;

async function session(box: Instance, port: 'submission' | 'submissions', password: string, from?: string) {
  const { client, auth } = await authenticated(box.ports, ALICE, { password, implicitTls: port === 'submissions', localAddress: '127.0.0.20' });
  if (auth.code === 235 && from) await client.send(from, ['x@outside.example'], message(from, 'x@outside.example', `metrics ${port} ${from}`));
  await client.quit();
}

describe('/metrics', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ AUTH_FAILURE_DELAY: '0' });
  });
  after(async () => {
    await box.destroy();
  });

  test('counters move by exactly the traffic driven; gauges report state; no addresses in labels', async () => {
    const scrape = () => scrapeUrl(box.url('/metrics'));
    const before = await scrape();

    await session(box, 'submission', PASSWORD, ALICE); // success, 1 accepted
    await session(box, 'submission', 'wrong'); // failure
    await session(box, 'submissions', PASSWORD, ALICE); // success, 1 accepted
    await session(box, 'submission', PASSWORD, `bob@${DOMAIN}`); // success, sender mismatch
    const { client } = await SmtpClient.connect(box.ports.smtp);
    await client.ehlo();
    await client.send('stranger@outside.example', ['x@outside.example'], 'x'); // relay denied
    await client.quit();
    await waitFor('two deliveries at the sink', 20_000, () => (box.sink.messages().length >= 2 ? true : undefined));

    const after = await waitFor('the counters to settle', 10_000, async () => {
      const text = await scrape();
      return counter(text, 'relaybox_deliveries_total', { destination: 'upstream', status: 'sent' }) - counter(before, 'relaybox_deliveries_total', { destination: 'upstream', status: 'sent' }) === 2 &&
        counter(text, 'relaybox_smtp_rejections_total', { reason: 'relay_denied' }) > counter(before, 'relaybox_smtp_rejections_total', { reason: 'relay_denied' })
        ? text
        : undefined;
    }, 200);
    // A labelled counter appears once incremented: absent before is 0, but after the traffic it must be there.
    const delta = (name: string, labels: Record<string, string> = {}) => gauge(after, name, labels) - counter(before, name, labels);
    assert.equal(delta('relaybox_smtp_auth_total', { port: 'submission', result: 'success' }), 2);
    assert.equal(delta('relaybox_smtp_auth_total', { port: 'submission', result: 'failure' }), 1);
    assert.equal(delta('relaybox_smtp_auth_total', { port: 'submissions', result: 'success' }), 1);
    assert.equal(delta('relaybox_messages_accepted_total', { port: 'submission' }), 1);
    assert.equal(delta('relaybox_messages_accepted_total', { port: 'submissions' }), 1);
    assert.equal(delta('relaybox_smtp_rejections_total', { reason: 'relay_denied' }), 1);
    assert.equal(delta('relaybox_smtp_rejections_total', { reason: 'sender_mismatch' }), 1);
    assert.equal(delta('relaybox_deliveries_total', { destination: 'upstream', status: 'sent' }), 2);

    // Gauges: a missing series fails (gauge() throws), it never reads as 0.
    for (const daemon of ['postfix', 'dovecot']) {
      assert.equal(gauge(after, 'relaybox_daemon_up', { daemon }), 1);
      assert.equal(gauge(after, 'relaybox_daemon_restarts', { daemon }), 0);
    }
    assert.equal(gauge(after, 'relaybox_ready'), 1);
    assert.equal(gauge(after, 'relaybox_probe_up', { check: 'sasl' }), 1);
    assert.equal(gauge(after, 'relaybox_probe_up', { check: `submission:${box.ports.submission}` }), 1);
    // A TLS handshake and EHLO take some milliseconds, and finish within the probe's timeout.
    const latency = gauge(after, 'relaybox_probe_latency_seconds', { check: `submissions:${box.ports.submissions}` });
    assert.ok(latency > 0 && latency < 10, `465's probe latency ${latency} s`);
    assert.ok(Number.isFinite(gauge(after, 'relaybox_probe_latency_seconds', { check: 'sasl' })));
    assert.ok(gauge(after, 'relaybox_tls_certificate_expiry_timestamp_seconds') > Date.now() / 1000 + 86400 * 300);
    for (const queue of ['active', 'deferred', 'incoming', 'hold']) assert.equal(gauge(after, 'relaybox_queue_messages', { queue }), 0, queue);
    assert.equal(gauge(after, 'relaybox_bans_active'), 0);
    assert.doesNotMatch(after, /@relaybox\.test|@outside\.example|127\.0\.0\.20/);
  });

  test('a restart is counted', async () => {
    const { readFileSync } = await import('node:fs');
    process.kill(Number(readFileSync(`${box.stateDir}/run/master.pid`, 'utf8')), 'SIGKILL');
    await waitFor('the restart to show', 20_000, async () => (gauge(await scrapeUrl(box.url('/metrics')), 'relaybox_daemon_restarts', { daemon: 'dovecot' }) === 1 ? true : undefined), 200);
  });
});

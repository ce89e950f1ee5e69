// The MTA-STS policy source on its own (src/outbound/mta-sts.ts), against a real DNS server and a
// real HTTPS policy host on loopback (127.0.0.212:443, a test CA): what it answers Postfix, when it
// fetches again (the record's id changed), what it keeps (a cached policy outlives a failed fetch
// or a vanished record, RFC 8461 §5.1), and what it refuses (redirects, other content types).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MtaSts } from '../../src/outbound/mta-sts.ts';
import { DnsServer } from '../helpers/dns-server.ts';
import { TestCa } from '../helpers/test-ca.ts';

const DOMAIN = 'cache.example';
const POLICY = (mx: string, mode = 'enforce') => `version: STSv1\nmode: ${mode}\nmx: ${mx}\nmax_age: 86400\n`;

describe('MTA-STS policies: fetched, cached, refreshed', () => {
  let ca: TestCa;
  let dns: DnsServer;
  let host: Server;
  let served = { status: 200, type: 'text/plain', body: POLICY('mx1.cache.example') };
  let requests = 0;
  const lines: Array<Record<string, unknown>> = [];
  let sts: MtaSts;
  before(async () => {
    ca = new TestCa();
    dns = await DnsServer.start();
    for (const name of [DOMAIN, 'redirect.example', 'html.example']) dns.set(`mta-sts.${name}`, { A: ['127.0.0.212'] });
    dns.set(`_mta-sts.${DOMAIN}`, { TXT: ['v=STSv1; id=one'] });
    dns.set('_mta-sts.redirect.example', { TXT: ['v=STSv1; id=r'] });
    dns.set('_mta-sts.html.example', { TXT: ['v=STSv1; id=h'] });
    const pair = ca.issue(`mta-sts.${DOMAIN}`, 'mta-sts.redirect.example', 'mta-sts.html.example', 'mta-sts.testing.example');
    host = createServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (req, res) => {
      requests++;
      const name = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (name === 'mta-sts.redirect.example') return void res.writeHead(301, { location: `https://mta-sts.${DOMAIN}/.well-known/mta-sts.txt` }).end();
      if (name === 'mta-sts.html.example') return void res.writeHead(200, { 'content-type': 'text/html' }).end(POLICY('mx.html.example'));
      res.writeHead(served.status, { 'content-type': served.type }).end(served.body);
    });
    await new Promise<void>((resolve) => host.listen(443, '127.0.0.212', resolve));
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
    sts = new MtaSts({ servers: [dns.address], caFile: ca.cert, log: pino({ level: 'debug' }, sink) });
  });
  after(async () => {
    await new Promise((resolve) => host?.close(resolve));
    await dns?.stop();
    ca?.remove();
  });

  test('enforce: secure, the certificate must name an MX of the policy (SNI: the MX host)', async () => {
    assert.deepEqual(await sts.lookup(DOMAIN), { found: 'secure match=mx1.cache.example servername=hostname' });
    assert.equal(requests, 1);
  });

  test('the same id: the cached policy, no new fetch; a new id: fetched again', async () => {
    served = { ...served, body: POLICY('*.mx.cache.example') };
    assert.deepEqual(await sts.lookup(DOMAIN), { found: 'secure match=mx1.cache.example servername=hostname' });
    assert.equal(requests, 1);
    dns.set(`_mta-sts.${DOMAIN}`, { TXT: ['v=STSv1; id=two'] });
    assert.deepEqual(await sts.lookup(DOMAIN), { found: 'secure match=.mx.cache.example servername=hostname' });
    assert.equal(requests, 2);
  });

  test('lookups at the same time for a new policy fetch it once', async () => {
    dns.set(`_mta-sts.${DOMAIN}`, { TXT: ['v=STSv1; id=twoandahalf'] });
    const before = requests;
    const answers = await Promise.all([1, 2, 3, 4].map(() => sts.lookup(DOMAIN)));
    assert.equal(requests - before, 1);
    assert.ok(answers.every((answer) => 'found' in answer));
  });

  test('a failed fetch or a vanished record keeps the cached policy in force, and says so', async () => {
    served = { ...served, status: 500 };
    dns.set(`_mta-sts.${DOMAIN}`, { TXT: ['v=STSv1; id=three'] });
    assert.deepEqual(await sts.lookup(DOMAIN), { found: 'secure match=.mx.cache.example servername=hostname' });
    assert.ok(lines.some((l) => l.event === 'mta_sts_fetch_failed' && l.domain === DOMAIN && /HTTP 500/.test(String(l.error))));
    dns.remove(`_mta-sts.${DOMAIN}`);
    assert.deepEqual(await sts.lookup(DOMAIN), { found: 'secure match=.mx.cache.example servername=hostname' });
  });

  test('redirects are not followed, other content types refused: no policy', async () => {
    assert.deepEqual(await sts.lookup('redirect.example'), { notFound: true });
    assert.ok(lines.some((l) => l.event === 'mta_sts_fetch_failed' && l.domain === 'redirect.example' && /301/.test(String(l.error))));
    assert.deepEqual(await sts.lookup('html.example'), { notFound: true });
    assert.ok(lines.some((l) => l.event === 'mta_sts_fetch_failed' && l.domain === 'html.example' && /text\/html/.test(String(l.error))));
  });

  test('no record, parent-domain keys and [host]:port nexthops: not found', async () => {
    assert.deepEqual(await sts.lookup('nothing.example'), { notFound: true });
    assert.deepEqual(await sts.lookup('.example'), { notFound: true });
    assert.deepEqual(await sts.lookup('[192.0.2.1]:25'), { notFound: true });
  });

  test('testing: not enforced, reported once; a policy host whose certificate does not name it: no policy', async () => {
    dns.set('_mta-sts.testing.example', { TXT: ['v=STSv1; id=t'] });
    dns.set('mta-sts.testing.example', { A: ['127.0.0.212'] });
    served = { status: 200, type: 'text/plain', body: POLICY('mx.testing.example', 'testing') };
    assert.deepEqual(await sts.lookup('testing.example'), { notFound: true });
    assert.deepEqual(await sts.lookup('testing.example'), { notFound: true });
    assert.equal(lines.filter((l) => l.event === 'mta_sts_testing' && l.domain === 'testing.example').length, 1);
    dns.set('_mta-sts.unnamed.example', { TXT: ['v=STSv1; id=u'] });
    dns.set('mta-sts.unnamed.example', { A: ['127.0.0.212'] });
    served = { status: 200, type: 'text/plain', body: POLICY('mx.unnamed.example') };
    assert.deepEqual(await sts.lookup('unnamed.example'), { notFound: true });
    assert.ok(lines.some((l) => l.event === 'mta_sts_fetch_failed' && l.domain === 'unnamed.example' && /altnames|certificate/i.test(String(l.error))));
  });
});

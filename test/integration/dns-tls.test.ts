// `relaybox dns` for the inbound TLS records, and `dns --check` against a real DNS server (Knot) and
// the MTA-STS policy served over HTTPS on 127.0.0.209:443: the _mta-sts record, the policy file and
// where to serve it, the TLS-RPT record, and with DANE_INBOUND the TLSA record of the certificate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { DnssecLab, tlsaFor } from '../helpers/dnssec-lab.ts';
import { runCli } from '../helpers/instance.ts';
import { TestCa } from '../helpers/test-ca.ts';

const DOMAIN = 'inbound.test';
const HOSTNAME = `mail.${DOMAIN}`;

describe('relaybox dns: MTA-STS, TLS-RPT and TLSA for the domains relaybox serves', () => {
  let ca: TestCa;
  let lab: DnssecLab;
  let policyHost: Server;
  let served = '';
  let env: Record<string, string>;
  let printed = '';
  before(async () => {
    ca = new TestCa();
    const cert = ca.issue(HOSTNAME);
    env = {
      PATH: process.env.PATH ?? '',
      MAIL_HOSTNAME: HOSTNAME,
      MAIL_DOMAINS: DOMAIN,
      STATE_DIR: mkdtempSync('/tmp/rbdnstls-'),
      TLS_CERT_FILE: cert.cert,
      TLS_KEY_FILE: cert.key,
      DANE_INBOUND: 'on',
      TLS_RPT_ADDRESS: `tls-reports@${DOMAIN}`,
      MTA_STS_POLICY_MODE: 'enforce',
      OUTBOUND_TLS_CA_FILE: ca.cert,
      DKIM_SIGNING: 'off',
    };
    const result = await runCli(['dns'], env);
    assert.equal(result.code, 0, result.stderr);
    printed = result.stdout;
    // The printed records are zone-file lines: the test's DNS serves exactly them.
    const records = printed.split('\n').filter((line) => /^\S+\.\s+3600 IN /.test(line));
    lab = await DnssecLab.start([{ origin: DOMAIN, signed: false, records: [...records, 'mta-sts A 127.0.0.209'] }]);
    env.DNS_SERVERS = lab.address;
    served = printed.split('\n').filter((line) => line.startsWith(';   ')).map((line) => `${line.slice(4)}\n`).join('');
    const pair = ca.issue(`mta-sts.${DOMAIN}`);
    policyHost = createServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (req, res) => {
      if (req.url !== '/.well-known/mta-sts.txt') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(served);
    });
    await new Promise<void>((resolve) => policyHost.listen(443, '127.0.0.209', resolve));
  });
  after(async () => {
    await new Promise((resolve) => policyHost?.close(resolve));
    await lab?.stop();
    rmSync(env.STATE_DIR!, { recursive: true, force: true });
    ca?.remove();
  });

  test('prints the _mta-sts and _smtp._tls records, the policy and its URL, and the TLSA record', () => {
    assert.match(printed, new RegExp(`^_mta-sts\\.inbound\\.test\\.\\s+3600 IN TXT "v=STSv1; id=[0-9a-f]{20}"$`, 'm'));
    assert.match(printed, /^_smtp\._tls\.inbound\.test\.\s+3600 IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@inbound\.test"$/m);
    assert.match(printed, /^; MTA-STS: serve https:\/\/mta-sts\.inbound\.test\/\.well-known\/mta-sts\.txt over HTTPS/m);
    assert.equal(served, `version: STSv1\nmode: enforce\nmx: ${HOSTNAME}\nmax_age: 604800\n`);
    assert.ok(printed.split('\n').some((line) => line.replace(/\s+/g, ' ') === `_25._tcp.${HOSTNAME}. 3600 IN TLSA ${tlsaFor(env.TLS_CERT_FILE!)}`), printed);
    assert.match(printed, /^; mail\.inbound\.test \(DANE_INBOUND: publish only in a DNSSEC-signed zone/m);
  });

  test('dns --check: everything published and served is OK', async () => {
    const check = await runCli(['dns', '--check'], env);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /^OK\s+_mta-sts\.inbound\.test TXT \(mta-sts\): id=\w+, https:\/\/mta-sts\.inbound\.test\/\.well-known\/mta-sts\.txt serves mode enforce, mx mail\.inbound\.test$/m);
    assert.match(check.stdout, /^OK\s+_smtp\._tls\.inbound\.test TXT \(tls-rpt\)/m);
    assert.match(check.stdout, /^OK\s+_25\._tcp\.mail\.inbound\.test TLSA \(tlsa\): a published record matches/m);
  });

  test('dns --check: a served policy without MAIL_HOSTNAME, and a certificate the TLSA record does not match, are errors', async () => {
    served = 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\nmax_age: 604800\n';
    const other = ca.issue(HOSTNAME);
    const check = await runCli(['dns', '--check'], { ...env, TLS_CERT_FILE: other.cert, TLS_KEY_FILE: other.key });
    assert.equal(check.code, 1, check.stdout);
    assert.match(check.stdout, /^ERROR\s+_mta-sts\.inbound\.test TXT \(mta-sts\): the served policy's mx \(mx\.elsewhere\.example\) does not name mail\.inbound\.test/m);
    assert.match(check.stdout, /^ERROR\s+_25\._tcp\.mail\.inbound\.test TLSA \(tlsa\): no published record matches the certificate in service/m);
    policyHost.close();
    const down = await runCli(['dns', '--check'], env);
    assert.match(down.stdout, /^ERROR\s+_mta-sts\.inbound\.test TXT \(mta-sts\): the record is published but https:\/\/mta-sts\.inbound\.test\/\.well-known\/mta-sts\.txt cannot be fetched/m);
  });
});

// Renderers of the signer and the filter: which port gets which milter, and that a milter that does
// not answer means 451 (milter_default_action = tempfail), never unchecked or unsigned mail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.ts';
import { renderAll } from '../../src/render/index.ts';
import type { RenderInput } from '../../src/render/types.ts';

function input(env: Record<string, string> = {}): RenderInput {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a', STATE_DIR: '/srv/rb', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  const dkimKeys = (result.config.dkim?.signing ?? []).flatMap(({ domain, selectors }) => selectors.map((selector) => ({ domain, selector, path: `/srv/rb/dkim/${domain}.${selector}.key` })));
  return { config: result.config, users: result.config.users, tls: { certFile: '/c', keyFile: '/k' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys };
}

const file = (files: ReturnType<typeof renderAll>, suffix: string) => files.find((f) => f.path.endsWith(suffix))?.content;

/** The `-o` options of the master.cf service listening on `port`. */
function serviceOptions(master: string, port: string): string[] {
  const lines = master.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`${port} `) || line.startsWith(`127.0.0.1:${port} `));
  const options: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  -o ')) break;
    options.push(line.slice(5));
  }
  return options;
}

test('submission is signed by OpenDKIM; port 25 is checked by rspamd; a milter that does not answer means 451', () => {
  const files = renderAll(input());
  const master = file(files, '/master.cf')!;
  assert.ok(serviceOptions(master, '587').includes('smtpd_milters=unix:/private/relaybox-milter,unix:/opendkim/opendkim.sock'));
  assert.ok(serviceOptions(master, '465').includes('smtpd_milters=unix:/private/relaybox-milter,unix:/opendkim/opendkim.sock'));
  assert.ok(serviceOptions(master, '25').includes('smtpd_milters=unix:/rspamd/milter.sock'));
  assert.ok(!serviceOptions(master, '25').some((o) => o.includes('opendkim')), 'port 25 signs only for TRUSTED_NETWORKS');
  const main = file(files, '/main.cf')!;
  assert.match(main, /^milter_default_action = tempfail$/m);
  assert.match(main, /^milter_header_checks = regexp:\/srv\/rb\/postfix\/milter_header_checks$/m);
});

test('TRUSTED_NETWORKS on port 25 are signed instead of scanned (smtpd_milter_maps), and are OpenDKIM internal hosts', () => {
  const files = renderAll(input({ TRUSTED_NETWORKS: '192.0.2.0/24, 2001:db8::/48' }));
  assert.ok(serviceOptions(file(files, '/master.cf')!, '25').includes('smtpd_milter_maps=cidr:/srv/rb/postfix/milter_maps'));
  assert.equal(file(files, '/postfix/milter_maps')!.split('\n').filter((l) => !l.startsWith('#') && l).join('\n'), '192.0.2.0/24 unix:/opendkim/opendkim.sock\n2001:db8::/48 unix:/opendkim/opendkim.sock');
  assert.match(file(files, '/opendkim.conf')!, /^InternalHosts csl:127\.0\.0\.1,::1,192\.0\.2\.0\/24,2001:db8::\/48$/m);
});

test('OpenDKIM: one key table row and one signing table row per domain and selector, every selector signs', () => {
  const files = renderAll(input({ MAIL_DOMAINS: 'example.com, example.org', DKIM_SELECTORS: 'old, new' }));
  const rows = (suffix: string) => file(files, suffix)!.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(rows('/KeyTable'), [
    'old._domainkey.example.com example.com:old:/srv/rb/dkim/example.com.old.key',
    'new._domainkey.example.com example.com:new:/srv/rb/dkim/example.com.new.key',
    'old._domainkey.example.org example.org:old:/srv/rb/dkim/example.org.old.key',
    'new._domainkey.example.org example.org:new:/srv/rb/dkim/example.org.new.key',
  ]);
  assert.deepEqual(rows('/SigningTable'), [
    '*@example.com old._domainkey.example.com',
    '*@example.com new._domainkey.example.com',
    '*@example.org old._domainkey.example.org',
    '*@example.org new._domainkey.example.org',
    // bounces and notices (MAILER-DAEMON@MAIL_HOSTNAME): the keys of the domain the host is in
    '*@mail.example.com old._domainkey.example.com',
    '*@mail.example.com new._domainkey.example.com',
  ]);
  const conf = file(files, '/opendkim.conf')!;
  assert.match(conf, /^MultipleSignatures yes$/m);
  assert.match(conf, /^Mode s$/m);
  assert.match(conf, /^On-Default tempfail$/m);
  assert.match(conf, /^Socket local:\/srv\/rb\/queue\/opendkim\/opendkim\.sock$/m);
});

test('DKIM_DOMAINS signs other domains than MAIL_DOMAINS; DKIM_SIGNING=off renders no signer and no milter', () => {
  const relay = renderAll(input({ MAIL_DOMAINS: '', MAIL_USERS: 'alice@example.net:{PLAIN}a', DKIM_DOMAINS: 'example.net' }));
  assert.match(file(relay, '/SigningTable')!, /^\*@example\.net relaybox\._domainkey\.example\.net$/m);
  assert.equal(file(relay, '/rspamd.conf'), undefined, 'relay only: no filter');
  const off = renderAll(input({ DKIM_SIGNING: 'off' }));
  assert.equal(file(off, '/opendkim.conf'), undefined);
  assert.ok(!file(off, '/master.cf')!.includes('opendkim'));
});

test('rspamd: the two thresholds, DMARC policies enforced, nothing fetched from the Internet, DNS_SERVERS used', () => {
  const files = renderAll(input({ SPAM_HEADER_SCORE: '5.5', SPAM_REJECT_SCORE: '12', DNS_SERVERS: '127.0.0.53, [2001:db8::53]:5353' }));
  const actions = file(files, '/local.d/actions.conf')!;
  assert.match(actions, /^add_header = 5\.5;$/m);
  assert.match(actions, /^reject = 12;$/m);
  assert.match(file(files, '/local.d/dmarc.conf')!, /reject = "reject";/);
  for (const module of ['rspamd_update', 'phishing', 'rbl', 'multimap', 'dkim_signing']) assert.match(file(files, `/local.d/${module}.conf`)!, /^enabled = false;$/m, module);
  assert.match(file(files, '/local.d/options.inc')!, /nameserver = \["127\.0\.0\.53:53", "\[2001:db8::53\]:5353"\];/);
  assert.match(file(files, '/unbound/unbound.conf')!, /^  forward-addr: 127\.0\.0\.53@53\n  forward-addr: 2001:db8::53@5353$/m, 'the validating resolver forwards to them');
  const system = renderAll(input({ DNS_SERVERS: '127.0.0.53, [2001:db8::53]:5353', RESOLVER: 'system' }));
  assert.match(file(system, '/queue/etc/resolv.conf')!, /^nameserver 127\.0\.0\.53$/m, 'RESOLVER=system: Postfix gets the port-53 servers');
  assert.ok(!file(system, '/queue/etc/resolv.conf')!.includes('2001:db8::53'), 'Postfix cannot use another port');
});

test('SPAM_REJECT_SCORE must be above SPAM_HEADER_SCORE', () => {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', SPAM_HEADER_SCORE: '10', SPAM_REJECT_SCORE: '8' });
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.errors.some((e) => e.startsWith('SPAM_REJECT_SCORE=') && e.includes('above SPAM_HEADER_SCORE')));
});

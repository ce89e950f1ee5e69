// Direct delivery's settings and renderers: the validating resolver (unbound) and Postfix's DANE,
// OUTBOUND_TLS, TLS_POLICY rows, the MTA-STS socketmap; nothing of it with a smarthost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load.ts';
import { declareDaemons } from '../../src/daemons/index.ts';
import { renderAll } from '../../src/render/index.ts';
import { statePaths } from '../../src/render/paths.ts';
import { renderMainCf } from '../../src/render/postfix.ts';
import type { RenderInput } from '../../src/render/types.ts';

const PATHS = statePaths('/srv/rb');
const BASE = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a', STATE_DIR: '/srv/rb', SPAM_FILTER: 'off' };

function input(env: Record<string, string> = {}): RenderInput {
  const result = loadConfig({ ...BASE, ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return { config: result.config, users: result.config.users, tls: { certFile: '/srv/rb/tls/cert.pem', keyFile: '/srv/rb/tls/key.pem' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [] } as RenderInput;
}
const errors = (env: Record<string, string>) => {
  const result = loadConfig({ ...BASE, ...env });
  return result.ok ? [] : result.errors;
};
const settings = (text: string) => new Map(text.split('\n').filter((l) => /^\w+ = ?/.test(l)).map((l) => [l.slice(0, l.indexOf(' =')), l.slice(l.indexOf('=') + 1).trim()]));
const main = (env: Record<string, string> = {}) => settings(renderMainCf(input(env), PATHS));
const rendered = (env: Record<string, string>, path: string) => renderAll(input(env)).find((f) => f.path === path)?.content;

test('direct delivery by default: DANE through relaybox\'s validating resolver on loopback', () => {
  const conf = main();
  assert.equal(conf.get('relayhost'), '');
  assert.equal(conf.get('smtp_tls_security_level'), 'dane');
  assert.equal(conf.get('smtp_dns_support_level'), 'dnssec');
  assert.equal(conf.get('smtp_tls_dane_insecure_mx_policy'), 'dane');
  assert.equal(rendered({}, '/srv/rb/queue/etc/resolv.conf'), '# Rendered by relaybox: its validating resolver (RESOLVER=unbound).\nnameserver 127.0.0.153\noptions trust-ad edns0\n');
  const unbound = rendered({}, '/srv/rb/unbound/unbound.conf')!;
  assert.match(unbound, /^  interface: 127\.0\.0\.153@53$/m);
  assert.match(unbound, /^  trust-anchor-file: "\/usr\/share\/dns\/root\.key"$/m, "the root's key from dns-root-data");
  assert.match(unbound, /^  module-config: "validator iterator"$/m);
  assert.match(unbound, /^  harden-dnssec-stripped: yes$/m);
  assert.doesNotMatch(unbound, /forward-zone|do-not-query-localhost|nodefault/, 'no DNS_SERVERS: recursion from the root, loopback servers not asked, RFC 6761 names stay local');
  assert.deepEqual(declareDaemons({ config: input().config, paths: PATHS }).map((d) => d.name).sort(), ['dovecot', 'opendkim', 'postfix', 'unbound']);
});

test('DNS_SERVERS become the resolver\'s forwarders; DNSSEC_TRUST_ANCHOR_FILE and RESOLVER_ADDRESS are honoured', () => {
  const anchor = `${mkdtempSync('/tmp/rbanchor-')}/anchor.key`;
  writeFileSync(anchor, 'lab.test. IN DNSKEY 257 3 13 AAAA\n');
  const env = { DNS_SERVERS: '127.0.0.1:5353', DNSSEC_TRUST_ANCHOR_FILE: anchor, RESOLVER_ADDRESS: '127.0.0.77' };
  const unbound = rendered(env, '/srv/rb/unbound/unbound.conf')!;
  assert.match(unbound, /^forward-zone:\n  name: "\."\n  forward-addr: 127\.0\.0\.1@5353$/m);
  assert.match(unbound, /^  do-not-query-localhost: no$/m);
  assert.match(unbound, /^  trust-anchor-file: "\/srv\/rb\/unbound\/trust-anchor\.key"$/m, 'a copy unbound can read once it has dropped to its user');
  assert.equal(rendered(env, '/srv/rb/unbound/trust-anchor.key'), 'lab.test. IN DNSKEY 257 3 13 AAAA\n');
  assert.equal(renderAll(input(env)).find((f) => f.path === '/srv/rb/unbound/trust-anchor.key')?.mode, 0o644);
  assert.match(unbound, /^  interface: 127\.0\.0\.77@53$/m);
  assert.match(rendered(env, '/srv/rb/queue/etc/resolv.conf')!, /^nameserver 127\.0\.0\.77$/m);
  writeFileSync(anchor, 'nothing here\n');
  assert.ok(errors({ DNSSEC_TRUST_ANCHOR_FILE: anchor }).some((e) => e.startsWith('DNSSEC_TRUST_ANCHOR_FILE=') && e.includes('DNSKEY or DS')));
  assert.ok(errors({ DNSSEC_TRUST_ANCHOR_FILE: '/nonexistent/anchor' }).some((e) => e.startsWith('DNSSEC_TRUST_ANCHOR_FILE=') && e.includes('cannot read')));
  for (const bad of ['10.0.0.1', '::1', 'localhost']) assert.ok(errors({ RESOLVER_ADDRESS: bad }).some((e) => e.startsWith('RESOLVER_ADDRESS=') && e.includes('loopback')), bad);
});

test('RESOLVER=system: no resolver of its own, opportunistic TLS unless OUTBOUND_TLS=dane is asked for', () => {
  const env = { RESOLVER: 'system', DNS_SERVERS: '127.0.0.53' };
  assert.equal(rendered(env, '/srv/rb/unbound/unbound.conf'), undefined);
  assert.ok(!declareDaemons({ config: input(env).config, paths: PATHS }).some((d) => d.name === 'unbound'));
  assert.equal(main(env).get('smtp_tls_security_level'), 'may');
  assert.equal(main(env).has('smtp_dns_support_level'), false);
  assert.equal(rendered(env, '/srv/rb/queue/etc/resolv.conf'), '# Rendered by relaybox from DNS_SERVERS.\nnameserver 127.0.0.53\n');
  const dane = { ...env, OUTBOUND_TLS: 'dane' };
  assert.equal(main(dane).get('smtp_tls_security_level'), 'dane');
  assert.equal(main(dane).get('smtp_dns_support_level'), 'dnssec');
  assert.match(rendered(dane, '/srv/rb/queue/etc/resolv.conf')!, /^options trust-ad/m);
  assert.equal(main({ OUTBOUND_TLS: 'encrypt' }).get('smtp_tls_security_level'), 'encrypt');
  assert.equal(main({ OUTBOUND_TLS: 'may' }).get('smtp_tls_security_level'), 'may');
  assert.ok(errors({ OUTBOUND_TLS: 'secure' }).some((e) => e.startsWith('OUTBOUND_TLS=') && e.includes('dane, encrypt, may')));
  assert.ok(errors({ RESOLVER: 'bind' }).some((e) => e.startsWith('RESOLVER=') && e.includes('unbound or system')));
});

test('weaker direct delivery is warned about: OUTBOUND_TLS=may, and dane vouched for by an outside resolver', () => {
  const warned = (env: Record<string, string>) => {
    const result = loadConfig({ ...BASE, ...env });
    assert.ok(result.ok);
    return result.warnings.filter((w) => !w.startsWith('MAIL_USERS'));
  };
  assert.deepEqual(warned({}), []);
  assert.ok(warned({ OUTBOUND_TLS: 'may' }).some((w) => w.startsWith('OUTBOUND_TLS=may:')));
  assert.ok(warned({ RESOLVER: 'system' }).some((w) => w.startsWith('OUTBOUND_TLS=may:')), 'the default without a validating resolver');
  assert.ok(warned({ RESOLVER: 'system', OUTBOUND_TLS: 'dane' }).some((w) => w.includes('AD bit')));
  assert.deepEqual(warned({ RELAY_HOST: '[smtp.provider.example]:587', OUTBOUND_TLS: 'may' }), [], 'not about direct delivery with a smarthost');
});

test('a smarthost changes nothing: no resolver, no DANE, the smarthost verified as before', () => {
  const env = { RELAY_HOST: '[smtp.provider.example]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD: 'p4ssword', OUTBOUND_TLS: 'dane' };
  const conf = main(env);
  assert.equal(conf.get('smtp_tls_security_level'), 'secure');
  assert.equal(conf.get('smtp_tls_policy_maps'), 'texthash:/srv/rb/postfix/relay_tls_policy');
  assert.equal(conf.has('smtp_dns_support_level'), false);
  assert.equal(rendered(env, '/srv/rb/unbound/unbound.conf'), undefined);
  assert.ok(!declareDaemons({ config: input(env).config, paths: PATHS }).some((d) => d.name === 'unbound'));
  assert.ok(errors({ RELAY_HOST: '[smtp.provider.example]:587', TLS_POLICY: 'example.net=verify' }).some((e) => e.startsWith('TLS_POLICY=') && e.includes('RELAY_HOST')));
});

test('TLS_POLICY: one row per destination before the MTA-STS socketmap; bad entries named', () => {
  const env = { TLS_POLICY: 'bank.example=verify, .partner.example=encrypt\nlegacy.example=may' };
  const conf = main(env);
  assert.equal(conf.get('smtp_tls_policy_maps'), 'texthash:/srv/rb/postfix/direct_tls_policy, socketmap:unix:private/relaybox-mta-sts:postfix');
  assert.equal(conf.get('smtp_tls_CApath'), '/etc/ssl/certs');
  const rows = rendered(env, '/srv/rb/postfix/direct_tls_policy')!;
  assert.match(rows, /^bank\.example secure\n\.partner\.example encrypt\nlegacy\.example may\n$/m);
  assert.equal(main({ TLS_POLICY: 'bank.example=verify', MTA_STS: 'off' }).get('smtp_tls_policy_maps'), 'texthash:/srv/rb/postfix/direct_tls_policy');
  assert.equal(main().get('smtp_tls_policy_maps'), 'socketmap:unix:private/relaybox-mta-sts:postfix', 'MTA-STS is on by default');
  assert.equal(main({ MTA_STS: 'off' }).has('smtp_tls_policy_maps'), false);
  for (const bad of ['example.com', 'example.com=strong', 'exa mple.com=may', 'a.example=may,a.example=none']) assert.ok(errors({ TLS_POLICY: bad }).some((e) => e.startsWith('TLS_POLICY=')), bad);
});

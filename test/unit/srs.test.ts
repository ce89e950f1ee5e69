// SRS addresses (src/srs/srs.ts), which senders are rewritten (service.ts), the socketmap protocol,
// and where the renderer applies it (render/postfix/srs.ts): port 25 only, while a forwarding target
// is outside the local domains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { renderMainCf, renderMasterCf } from '../../src/render/postfix.ts';
import { renderAll } from '../../src/render/index.ts';
import { statePaths } from '../../src/render/paths.ts';
import type { RenderInput } from '../../src/render/types.ts';
import { Srs } from '../../src/srs/srs.ts';
import { srsLookup, srsSecret, SrsService } from '../../src/srs/service.ts';
import { netstring, parseNetstrings, SocketmapServer, socketmapQuery } from '../../src/protocol/socketmap.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 2);
const srs = new Srs({ secret: 'a-test-key-of-enough-length', domain: 'Mail.Example.com' });

test('SRS0: forward and back; the hash covers timestamp, domain and local part; case-insensitive; 21 days', () => {
  const address = srs.forward('Alice@origin.example', NOW)!;
  assert.match(address, /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=origin\.example=Alice@mail\.example\.com$/);
  assert.equal(srs.reverse(address, NOW), 'Alice@origin.example');
  assert.equal(srs.reverse(address.toLowerCase(), NOW), 'alice@origin.example', 'an MTA that lowercases the address');
  assert.equal(srs.reverse(address, NOW + 21 * DAY), 'Alice@origin.example');
  assert.equal(srs.reverse(address, NOW + 22 * DAY), undefined, 'too old');
  assert.equal(srs.reverse(address.replace('=origin.example=', '=other.example='), NOW), undefined);
  assert.equal(srs.reverse(address.replace('=Alice@', '=bob@'), NOW), undefined);
  assert.equal(srs.reverse(address.replace(/@.*/, '@elsewhere.example'), NOW), undefined, 'only at our domain');
  assert.equal(new Srs({ secret: 'another-key-of-enough-length', domain: 'mail.example.com' }).reverse(address, NOW), undefined, 'another key');
  assert.equal(srs.reverse('SRS0=xxxx=ZZ@mail.example.com', NOW), undefined);
  assert.equal(srs.reverse('bob@mail.example.com', NOW), undefined);
  const acrossWrap = srs.forward('a@b.example', Date.UTC(1970, 0, 1) + 1023 * DAY)!;
  assert.equal(srs.reverse(acrossWrap, Date.UTC(1970, 0, 1) + 1030 * DAY), 'a@b.example', 'the day counter wraps at 1024');
});

test('SRS1: a sender another forwarder rewrote keeps its first hop, and a bounce goes back there', () => {
  const theirs = 'SRS0=AbCd=XY=origin.example=alice@forwarder.example';
  const ours = srs.forward(theirs, NOW)!;
  assert.match(ours, /^SRS1=[A-Za-z0-9+/]{4}=forwarder\.example==AbCd=XY=origin\.example=alice@mail\.example\.com$/);
  assert.equal(srs.reverse(ours, NOW), theirs);
  const again = srs.forward(ours.replace('@mail.example.com', '@second-hop.example'), NOW)!;
  assert.match(again, /^SRS1=[A-Za-z0-9+/]{4}=forwarder\.example==AbCd=/, 'an SRS1 sender keeps its first hop');
  assert.equal(srs.reverse(ours.replace('=forwarder.example=', '=evil.example='), NOW), undefined, 'the first hop is covered by the hash');
});

test('forward: only foreign senders; local domains, MAIL_HOSTNAME and our own SRS addresses stay', () => {
  const lookup = srsLookup(srs, ['example.com', 'Example.org']);
  assert.match(lookup('forward', 'x@partner.example')!, /^SRS0=.*=partner\.example=x@mail\.example\.com$/);
  assert.equal(lookup('forward', 'x@example.com'), undefined);
  assert.equal(lookup('forward', 'x@EXAMPLE.ORG'), undefined);
  assert.equal(lookup('forward', 'notice@mail.example.com'), undefined);
  assert.equal(lookup('forward', srs.forward('x@partner.example')!), undefined);
  assert.equal(lookup('forward', '@partner.example'), undefined, 'Postfix also asks for @domain');
  assert.equal(lookup('reverse', srs.forward('x@partner.example')!), 'x@partner.example');
  assert.equal(lookup('other', 'x@partner.example'), undefined);
});

test('the key file is made once, 0600, and a short key is refused', () => {
  const dir = mkdtempSync('/tmp/rbsrs-');
  const made = srsSecret(`${dir}/key`);
  assert.equal(srsSecret(`${dir}/key`), made);
  writeFileSync(`${dir}/short`, 'abc\n');
  assert.throws(() => srsSecret(`${dir}/short`), /at least 16 characters/);
});

test('netstrings: several per read, partial ones kept, malformed ones refused', () => {
  assert.deepEqual(parseNetstrings(Buffer.from('3:a b,5:c d e,2:x')), { items: ['a b', 'c d e'], rest: Buffer.from('2:x') });
  assert.equal(parseNetstrings(Buffer.from('3:abc;')), undefined);
  assert.equal(parseNetstrings(Buffer.from('x:abc,')), undefined);
});

test('the socketmap answers OK, NOTFOUND and TEMP over its socket', async () => {
  const dir = mkdtempSync('/tmp/rbsrs-');
  const server = new SocketmapServer({
    socketPath: `${dir}/map`,
    owner: undefined,
    lookup: (map, key) => {
      if (key === 'boom') throw new Error('boom');
      return map === 'm' && key === 'k' ? { found: 'v' } : { notFound: true };
    },
    log: pino({ level: 'silent' }),
    name: 'test',
  });
  await server.start();
  try {
    assert.equal(await socketmapQuery(`${dir}/map`, 'm', 'k'), 'OK v');
    assert.equal(await socketmapQuery(`${dir}/map`, 'm', 'nope'), 'NOTFOUND ');
    assert.equal(await socketmapQuery(`${dir}/map`, 'm', 'boom'), 'TEMP lookup failed');
  } finally {
    await server.stop();
  }
});

test('the socketmap answers pipelined async lookups in the order asked, and PERM to broken framing', async () => {
  const dir = mkdtempSync('/tmp/rbsrs-');
  const server = new SocketmapServer({
    socketPath: `${dir}/map`,
    owner: undefined,
    lookup: async (_map, key) => {
      if (key === 'slow') await new Promise((resolve) => setTimeout(resolve, 100));
      return { found: key };
    },
    log: pino({ level: 'silent' }),
    name: 'test',
  });
  await server.start();
  const exchange = (request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(`${dir}/map`, () => socket.write(request));
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
      setTimeout(() => socket.end(), 400);
    });
  try {
    assert.equal(await exchange(`${netstring('m slow')}${netstring('m fast')}`), `${netstring('OK slow')}${netstring('OK fast')}`);
    assert.equal(await exchange(`${netstring('m slow')}x:abc,`), `${netstring('PERM malformed request')}`, 'the broken request refused, the connection closed');
    assert.equal(await exchange(netstring('nokey')), netstring('PERM expected "<map> <key>"'));
  } finally {
    await server.stop();
  }
});

test('the SRS check fails while its socket file is gone, and its recovery listens again (socketmap_restarted)', async () => {
  const dir = mkdtempSync('/tmp/rbsrs-');
  writeFileSync(`${dir}/key`, 'a-sixteen-plus-character-key\n');
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const service = new SrsService({ socketPath: `${dir}/srs`, secretPath: `${dir}/key`, hostname: 'mail.example.com', domains: ['example.com'], log });
  await service.start();
  try {
    const check = service.check();
    assert.equal((await check.run()).ok, true);
    rmSync(`${dir}/srs`);
    assert.equal((await check.run()).ok, false, 'no socket, no answer');
    await check.recover?.();
    assert.equal((await check.run()).ok, true);
    assert.ok(lines.some((l) => l.event === 'socketmap_restarted' && l.map === 'srs' && l.msg === `srs lookup service listening again on ${dir}/srs`));
  } finally {
    await service.stop();
  }
});

const PATHS = statePaths('/srv/rb');
function input(env: Record<string, string>): RenderInput {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a', STATE_DIR: '/srv/rb', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return { config: result.config, users: result.config.users, tls: { certFile: '/c', keyFile: '/k' }, vmail: { uid: 5000, gid: 5000 }, bannedClients: [], dkimKeys: [] } as unknown as RenderInput;
}

test('rendered only while a forwarding target is outside: port 25 through cleanup-inbound, bounces reversed by virtual_alias_maps', () => {
  const outside = input({ MAIL_ALIASES: 'fwd@example.com:friend@outside.example' });
  const master = renderMasterCf(outside, PATHS);
  assert.match(master, /^cleanup-inbound {2}unix {2}n {2}- {2}y {2}- {2}0 {2}cleanup\n {2}-o sender_canonical_maps=socketmap:unix:private\/relaybox-srs:forward\n {2}-o sender_canonical_classes=envelope_sender$/m);
  const smtp = master.slice(master.indexOf('\n25 ') + 1, master.indexOf('\npickup'));
  assert.ok(smtp.startsWith('25 ') || /^\S+:25 /.test(smtp), smtp);
  assert.match(smtp, /-o cleanup_service_name=cleanup-inbound/);
  const submission = master.slice(master.indexOf('587 '), master.indexOf('465 '));
  assert.doesNotMatch(submission, /cleanup_service_name=cleanup-inbound/, 'authenticated mail keeps its sender (and its route)');
  const main = renderMainCf(outside, PATHS);
  assert.match(main, /^virtual_alias_maps = texthash:\/srv\/rb\/postfix\/aliases, socketmap:unix:private\/relaybox-srs:reverse$/m);
  assert.match(main, /^virtual_alias_domains = mail\.example\.com$/m);
  assert.match(main, /^lmtp_generic_maps = socketmap:unix:private\/relaybox-srs:reverse$/m, 'local mailboxes see the original sender');

  for (const env of [{ MAIL_ALIASES: 'fwd@example.com:alice@example.com' }, {}] as Array<Record<string, string>>) {
    const local = input(env);
    assert.doesNotMatch(renderMasterCf(local, PATHS), /cleanup-inbound|relaybox-srs/);
    // virtual_alias_domains = MAIL_HOSTNAME stays: postmaster@MAIL_HOSTNAME is a role address (maps.ts).
    assert.doesNotMatch(renderMainCf(local, PATHS), /relaybox-srs|lmtp_generic_maps/);
  }
  assert.match(renderMasterCf(input({ MAIL_ALIASES: '@example.com:catch@outside.example' }), PATHS), /cleanup-inbound/, 'a catch-all to outside');
  assert.match(renderMasterCf(input({ POSTMASTER_ADDRESS: 'admin@outside.example' }), PATHS), /cleanup-inbound/, 'the postmaster outside');
  const routed = { MAIL_ALIASES: 'fwd@example.com:friend@outside.example', RELAY_ROUTES: '@example.com=[smtp.x.example]:587 boss@example.com=[smtp.x.example]:587 @partner.example=[smtp.y.example]:587' };
  assert.match(renderMasterCf(input(routed), PATHS), /-o smtpd_end_of_data_restrictions=permit_mynetworks,check_sender_access,regexp:\/srv\/rb\/postfix\/route_senders/);
  const guard = renderAll(input(routed)).find((f) => f.path === '/srv/rb/postfix/route_senders')!.content;
  assert.match(guard, /^\/@example\\\.com\$\/ REJECT 5\.7\.1 /m, 'the whole domain, not its subdomains');
  assert.match(guard, /^\/\^boss@example\\\.com\$\/ REJECT /m);
  assert.doesNotMatch(guard, /partner/, 'senders outside the local domains are SRS-rewritten instead');
  assert.doesNotMatch(renderMasterCf(input({ RELAY_ROUTES: routed.RELAY_ROUTES }), PATHS), /smtpd_end_of_data_restrictions/, 'nothing taken on 25 leaves without an outside target');
  const hostnameIsLocal = input({ MAIL_HOSTNAME: 'example.com', MAIL_ALIASES: 'fwd@example.com:friend@outside.example' });
  assert.doesNotMatch(renderMainCf(hostnameIsLocal, PATHS), /virtual_alias_domains/, 'never in both address classes');
});

test('a route for MAIL_HOSTNAME is refused (it would match SRS senders); SRS_SECRET_FILE needs a real key', () => {
  const errors = (env: Record<string, string>) => {
    const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', MAIL_USERS: 'alice@example.com:{PLAIN}a', ...env });
    return result.ok ? [] : result.errors;
  };
  assert.match(errors({ RELAY_ROUTES: '@mail.example.com=[smtp.x.example]:587' }).join('\n'), /^RELAY_ROUTES.*@mail\.example\.com: MAIL_HOSTNAME's addresses are the SRS senders/m);
  const dir = mkdtempSync('/tmp/rbsrs-');
  writeFileSync(`${dir}/short`, 'short\n');
  writeFileSync(`${dir}/good`, 'a-shared-key-for-every-replica\n');
  assert.match(errors({ SRS_SECRET_FILE: `${dir}/short` }).join('\n'), /^SRS_SECRET_FILE.*shorter than 16 characters/m);
  assert.deepEqual(errors({ SRS_SECRET_FILE: `${dir}/good` }), []);
  assert.match(errors({ SRS_SECRET_FILE: `${dir}/missing` }).join('\n'), /^SRS_SECRET_FILE.*cannot read the file/m);
});

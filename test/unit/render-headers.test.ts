// Renderers of what headers and signatures guarantee: the fields OpenDKIM signs and oversigns, the
// header From: check before the signer on the submission ports, the role addresses and who may send
// as them, and the notices relaybox generates (signed; double bounces only to an explicit postmaster).
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
const setting = (conf: string, name: string) => new RegExp(`^${name} (.*)$`, 'm').exec(conf)?.[1]?.split(',');

test('OpenDKIM oversigns the fields a reader sees, and signs every field it oversigns', () => {
  const conf = file(renderAll(input()), '/opendkim.conf')!;
  const oversigned = setting(conf, 'OversignHeaders') ?? [];
  const signed = setting(conf, 'SignHeaders') ?? [];
  for (const field of ['From', 'To', 'Cc', 'Subject', 'Date', 'Reply-To', 'Message-ID', 'Content-Type', 'MIME-Version', 'List-Id', 'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Post']) {
    assert.ok(oversigned.includes(field), `${field} is not oversigned`);
  }
  assert.deepEqual(oversigned.filter((field) => !signed.includes(field)), []);
});

/** The `-o` options of the master.cf service listening on `port`. */
function serviceOptions(master: string, port: string): string[] {
  const lines = master.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`${port} `));
  const options: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  -o ')) break;
    options.push(line.slice(5));
  }
  return options;
}

test('587 and 465: the header From: milter first, then the signer (a refused message is never signed); without DKIM the check stays', () => {
  const master = file(renderAll(input()), '/master.cf')!;
  for (const port of ['587', '465']) assert.ok(serviceOptions(master, port).includes('smtpd_milters=unix:/private/relaybox-milter,unix:/opendkim/opendkim.sock'), port);
  assert.ok(!serviceOptions(master, '25').some((o) => o.includes('relaybox-milter')));
  const unsigned = file(renderAll(input({ DKIM_SIGNING: 'off' })), '/master.cf')!;
  assert.ok(serviceOptions(unsigned, '587').includes('smtpd_milters=unix:/private/relaybox-milter'));
});

const rows = (content: string) => content.split('\n').filter((l) => l && !l.startsWith('#'));

test('role addresses: postmaster@ each local domain and the host name, abuse@ each local domain, to the postmaster, who may send as them', () => {
  const files = renderAll(input({ MAIL_DOMAINS: 'example.com, example.org', MAIL_USERS: 'alice@example.com:{PLAIN}a bob@example.com:{PLAIN}b' }));
  const aliases = rows(file(files, '/postfix/aliases')!);
  for (const role of ['postmaster@example.com', 'postmaster@example.org', 'postmaster@mail.example.com', 'abuse@example.com', 'abuse@example.org']) {
    assert.ok(aliases.includes(`${role} alice@example.com`), role);
  }
  const senders = rows(file(files, '/postfix/sender_login')!);
  assert.ok(senders.includes('abuse@example.org alice@example.com'));
  assert.ok(senders.includes('postmaster@mail.example.com alice@example.com'));
  assert.ok(senders.includes('bob@example.com bob@example.com'));
  const main = file(files, '/main.cf')!;
  assert.match(main, /^virtual_alias_domains = mail\.example\.com$/m, 'the host name takes its postmaster@ mail');
  // An alias the operator set for a role address wins; a POSTMASTER_ADDRESS alias lets its users answer.
  const team = renderAll(input({ MAIL_USERS: 'alice@example.com:{PLAIN}a bob@example.com:{PLAIN}b', MAIL_ALIASES: 'abuse@example.com:bob@example.com\nteam@example.com:alice@example.com,bob@example.com', POSTMASTER_ADDRESS: 'team@example.com' }));
  assert.ok(rows(file(team, '/postfix/aliases')!).includes('abuse@example.com bob@example.com'));
  assert.ok(rows(file(team, '/postfix/sender_login')!).includes('postmaster@example.com alice@example.com,bob@example.com'));
  // The host name as a mailbox domain is not also an alias domain.
  assert.doesNotMatch(file(renderAll(input({ MAIL_HOSTNAME: 'example.com' })), '/main.cf')!, /^virtual_alias_domains/m);
});

test("relaybox's own mail is signed; Postfix's notices (other users' mail) go only to an explicit POSTMASTER_ADDRESS", () => {
  const main = file(renderAll(input()), '/main.cf')!;
  assert.match(main, /^non_smtpd_milters = unix:\/opendkim\/opendkim\.sock$/m);
  assert.match(main, /^internal_mail_filter_classes = bounce, notify$/m);
  assert.match(main, /^authorized_submit_users = root$/m);
  assert.match(main, /^notify_classes =$/m);
  assert.doesNotMatch(main, /^2bounce_notice_recipient/m);
  const explicit = file(renderAll(input({ POSTMASTER_ADDRESS: 'boss@elsewhere.example' })), '/main.cf')!;
  assert.match(explicit, /^notify_classes = resource, software, 2bounce$/m);
  assert.match(explicit, /^2bounce_notice_recipient = boss@elsewhere\.example$/m);
  assert.doesNotMatch(file(renderAll(input({ DKIM_SIGNING: 'off' })), '/main.cf')!, /^non_smtpd_milters/m);
});

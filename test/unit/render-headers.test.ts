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

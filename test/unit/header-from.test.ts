// The header From: rule: every address a reader could take as the author must be one the login may
// send as (the envelope's table); anything that cannot be read as addresses is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromAddresses, judgeHeaderFrom, maySendAs } from '../../src/abuse/header-from.ts';
import { sendAsTable } from '../../src/render/postfix/senders.ts';
import { loadConfig } from '../../src/config/load.ts';

test('addresses are read from every form of a From: header', () => {
  const cases: Array<[string, string[]]> = [
    ['alice@example.com', ['alice@example.com']],
    ['<Alice@Example.COM>', ['alice@example.com']],
    ['Alice Example <alice@example.com>', ['alice@example.com']],
    ['"Example, Alice" <alice@example.com>', ['alice@example.com']],
    ['"ceo@other.test" <alice@example.com>', ['alice@example.com']],
    ['=?utf-8?B?QWxpY2U=?= <alice@example.com>', ['alice@example.com']],
    ['John Q. Public <alice@example.com> (the boss)', ['alice@example.com']],
    ['alice@example.com (Alice <ceo@other.test>)', ['alice@example.com']],
    ['"alice"@example.com', ['alice@example.com']],
    ['alice@example.com, ceo@other.test', ['alice@example.com', 'ceo@other.test']],
    ['Alice <alice@example.com>,\r\n\tBoss <ceo@other.test>', ['alice@example.com', 'ceo@other.test']],
    ['Team: alice@example.com, Boss <ceo@other.test>;', ['alice@example.com', 'ceo@other.test']],
    ['a@example.com, Team: ceo@other.test;, b@example.com', ['a@example.com', 'ceo@other.test', 'b@example.com']],
    ['undisclosed-recipients:;', []],
  ];
  for (const [value, expected] of cases) assert.deepEqual(fromAddresses(value), expected, value);
});

test('what cannot be read as addresses is undefined (refused), never partly read', () => {
  for (const value of ['', 'alice', 'ceo@other.test <alice@example.com>', '<alice@example.com', '"alice@example.com', 'Alice <alice@example.com> <ceo@other.test>', '<@relay.test:ceo@other.test>', 'alice@example.com.', 'alice@@example.com', '(unclosed alice@example.com', 'Team: alice@example.com', 'a; b@example.com', '<>', 'ali "ce"@example.com', 'alice@"example.com"']) {
    const read = fromAddresses(value);
    assert.ok(read === undefined || (value === '' && read.length === 0), `${JSON.stringify(value)} read as ${JSON.stringify(read)}`);
  }
});

function table(env: Record<string, string> = {}) {
  const result = loadConfig({ MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com, other.test', MAIL_USERS: 'alice@example.com:{PLAIN}a bob@example.com:{PLAIN}b', MAIL_ALIASES: 'sales@example.com:alice@example.com,bob@example.com\n@other.test:bob@example.com\nout@example.com:someone@elsewhere.example', STATE_DIR: '/srv/rb', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return new Map(sendAsTable({ config: result.config, users: result.config.users }));
}

test('the send-as table: own address (+extension), aliases that lead to the login, never a catch-all or an outside target', () => {
  const senders = table();
  assert.ok(maySendAs(senders, 'alice@example.com', 'alice@example.com'));
  assert.ok(maySendAs(senders, 'ALICE@example.com', 'Alice+news@Example.com'));
  assert.ok(maySendAs(senders, 'bob@example.com', 'sales@example.com'));
  assert.ok(!maySendAs(senders, 'alice@example.com', 'bob@example.com'));
  assert.ok(!maySendAs(senders, 'bob@example.com', 'anything@other.test'), 'a catch-all is no sender address');
  assert.ok(!maySendAs(senders, 'alice@example.com', 'out@example.com'));
});

test('the verdict: one From: header, every address the login may send as; none falls back to the envelope unless <>', () => {
  const senders = table();
  const judge = (envelope: string, headers: string[]) => judgeHeaderFrom(senders, 'alice@example.com', envelope, headers);
  assert.deepEqual(judge('alice@example.com', ['Alice <alice@example.com>']), { ok: true });
  assert.deepEqual(judge('', ['Sales <sales@example.com>']), { ok: true });
  const forged = judge('alice@example.com', ['CEO <ceo@other.test>']);
  assert.equal(forged.ok, false);
  assert.deepEqual(!forged.ok && forged.addresses, ['ceo@other.test']);
  assert.equal(judge('', ['ceo@other.test']).ok, false);
  assert.equal(judge('alice@example.com', ['alice@example.com, ceo@other.test']).ok, false);
  assert.equal(judge('alice@example.com', ['alice@example.com', 'ceo@other.test']).ok, false);
  assert.equal(judge('alice@example.com', ['alice@example.com', 'alice@example.com']).ok, false, 'two From: headers');
  assert.equal(judge('alice@example.com', ['ceo@other.test <alice@example.com>']).ok, false, 'unreadable');
  assert.equal(judge('alice@example.com', ['undisclosed:;']).ok, false);
  assert.deepEqual(judge('alice@example.com', []), { ok: true });
  assert.equal(judge('', []).ok, false);
});

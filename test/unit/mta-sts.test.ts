// MTA-STS as data (the TXT record, the policy file, the Postfix policy it becomes) and the socketmap
// framing Postfix speaks to the supervisor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchList, parseStsPolicy, postfixPolicy, stsRecordId } from '../../src/outbound/policy.ts';
import { netstring, parseNetstrings } from '../../src/protocol/socketmap.ts';

test('the _mta-sts TXT record: exactly one v=STSv1 record with an id', () => {
  assert.equal(stsRecordId([['v=STSv1; id=20260101T000000']]), '20260101T000000');
  assert.equal(stsRecordId([['v=STSv1; ', 'id=abc123;']]), 'abc123', 'TXT strings are joined');
  assert.equal(stsRecordId([['v=spf1 -all'], ['v=STSv1; id=x1']]), 'x1', 'other TXT records are ignored');
  assert.equal(stsRecordId([['v=STSv1; id=a'], ['v=STSv1; id=b']]), undefined, 'two records: no policy');
  assert.equal(stsRecordId([['v=STSv1']]), undefined, 'no id');
  assert.equal(stsRecordId([['v=STSv1; id=not-alnum!']]), undefined);
  assert.equal(stsRecordId([]), undefined);
});

test('the policy file: version, mode, mx, max_age; bad files named', () => {
  const parsed = parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n');
  assert.deepEqual(parsed, { ok: true, policy: { mode: 'enforce', mx: ['mx1.example.com', '*.example.net'], maxAgeSeconds: 604800 } });
  assert.ok(parsed.ok);
  assert.equal(matchList(parsed.policy), 'mx1.example.com:.example.net');
  assert.equal(postfixPolicy(parsed.policy), 'secure match=mx1.example.com:.example.net servername=hostname');
  const bad: Array<[string, RegExp]> = [
    ['mode: enforce\nmx: a.example\nmax_age: 1\n', /version/],
    ['version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n', /mode/],
    ['version: STSv1\nmode: enforce\nmax_age: 1\n', /mx/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: forever\n', /max_age/],
    ['version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1\n', /mx line/],
  ];
  for (const [text, error] of bad) {
    const result = parseStsPolicy(text);
    assert.ok(!result.ok && error.test(result.error), text);
  }
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 60\n'), { ok: true, policy: { mode: 'none', mx: [], maxAgeSeconds: 60 } });
});

test('socketmap netstrings: several per chunk, split across chunks, broken framing refused', () => {
  assert.equal(netstring('OK dane'), '7:OK dane,');
  assert.equal(netstring('NOTFOUND '), '9:NOTFOUND ,');
  const two = parseNetstrings(Buffer.from('19:postfix example.com,20:postfix .example.c'));
  assert.deepEqual(two?.items, ['postfix example.com']);
  assert.equal(two?.rest.toString(), '20:postfix .example.c');
  assert.deepEqual(parseNetstrings(Buffer.concat([two!.rest, Buffer.from('om,')]))?.items, ['postfix .example.com']);
  assert.equal(parseNetstrings(Buffer.from('5:hello;')), undefined, 'no comma after the data');
  assert.equal(parseNetstrings(Buffer.from('x5:hello,')), undefined, 'not a length');
  assert.equal(parseNetstrings(Buffer.from('99999999:')), undefined, 'too long');
});

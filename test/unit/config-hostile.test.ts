// Values that would open the relay or break a rendered file are refused, naming the variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { envReference, loadConfig } from '../../src/config/load.ts';

const BASE = { MAIL_HOSTNAME: 'mail.example.com', MAIL_DOMAINS: 'example.com', STATE_DIR: '/srv/rb' };

function errorsFor(env: Record<string, string>): string[] {
  const result = loadConfig({ ...BASE, ...env });
  return result.ok ? [] : result.errors;
}

const reference = envReference();
const lists = reference.filter(({ list }) => list === true);

test('the reference the hostile checks loop over is the whole schema', () => {
  assert.ok(reference.length >= 60, `only ${reference.length} variables in envReference()`);
  assert.ok(lists.length >= 10, `only ${lists.length} list variables`);
  assert.ok(lists.some(({ name }) => name === 'MAIL_USERS') && reference.some(({ name }) => name === 'RELAY_PASSWORD'));
});

test('a NUL, a carriage return or a line break in any single-value variable is refused, naming it, without showing the value', () => {
  let checked = 0;
  for (const { name, list } of reference) {
    for (const bad of ['before\0after', 'before\rafter\r\nmore', 'before\nafter']) {
      if (list && !bad.includes('\0')) continue; // lists: the next test
      const errors = errorsFor({ [name]: bad });
      const named = errors.filter((e) => e.startsWith(`${name}:`) || e.startsWith(`${name}=`));
      assert.ok(named.length > 0, `${name}=${JSON.stringify(bad)} was accepted: ${errors.join('; ')}`);
      assert.ok(named.every((e) => !e.includes('after')), `${name}: the value was shown: ${named.join('; ')}`);
      checked += 1;
    }
  }
  assert.ok(checked >= reference.length, `${checked} cases checked`);
});

test('in a list variable a line break only separates entries: refused entry by entry, or accepted with no CR or LF left in the config', () => {
  for (const { name } of lists) {
    for (const bad of ['before\rafter\r\nmore', 'before\nafter', 'before\rafter']) {
      const result = loadConfig({ ...BASE, [name]: bad });
      if (result.ok) {
        assert.doesNotMatch(JSON.stringify(result.config), /\\[rn]/, `${name}=${JSON.stringify(bad)}: a CR or LF reached the config`);
      } else {
        const named = result.errors.filter((e) => e.startsWith(`${name}:`) || e.startsWith(`${name}=`));
        assert.ok(named.length > 0, `${name}: refused without naming it: ${result.errors.join('; ')}`);
        assert.ok(result.errors.every((e) => !/[\r\n]/.test(e)), `${name}: an error line carries a raw line break: ${JSON.stringify(result.errors)}`);
      }
    }
  }
});

test('a control character inside a file named by a *_FILE variable is refused, naming the variable', () => {
  const dir = mkdtempSync('/tmp/rbhostile-');
  for (const { name } of envReference().filter(({ name }) => name.endsWith('_FILE'))) {
    const file = `${dir}/${name}`;
    writeFileSync(file, 'first\0second\n');
    const errors = errorsFor({ [name]: file });
    assert.ok(errors.some((e) => e.startsWith(`${name}=`) && /control character|line break/.test(e)), `${name}: ${errors.join('; ')}`);
  }
});

test('a secret file of two lines is refused: a second line would become a second map entry', () => {
  const file = `${mkdtempSync('/tmp/rbhostile-')}/password`;
  writeFileSync(file, 'secret\r\nrelay.example.net injected:row\n');
  const errors = errorsFor({ RELAY_HOST: '[smtp.example.net]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD_FILE: file });
  assert.ok(errors.some((e) => e.startsWith('RELAY_PASSWORD_FILE=') && e.includes('line break')), errors.join('; '));
  writeFileSync(file, 'secret\n');
  assert.deepEqual(errorsFor({ RELAY_HOST: '[smtp.example.net]:587', RELAY_USERNAME: 'u', RELAY_PASSWORD_FILE: file }), []);
});

test('TRUSTED_NETWORKS that would make port 25 an open relay are refused', () => {
  for (const network of ['0.0.0.0/0', '::/0', '0.0.0.0/1', '128.0.0.0/4', '2000::/3', '10.0.0.0/8, 0.0.0.0/0']) {
    const errors = errorsFor({ TRUSTED_NETWORKS: network });
    assert.ok(errors.some((e) => e.startsWith('TRUSTED_NETWORKS=') && e.includes('open relay')), `${network}: ${errors.join('; ')}`);
  }
  for (const network of ['10.0.0.0/8', '192.168.1.0/24', '2001:db8::/32', '2001:db8:1::/48', '127.0.0.1']) {
    assert.deepEqual(errorsFor({ TRUSTED_NETWORKS: network }), [], network);
  }
});

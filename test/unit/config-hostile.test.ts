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

test('a NUL, a carriage return or a line break in any variable is refused, naming it, without showing the value', () => {
  for (const { name, list } of envReference()) {
    for (const bad of ['before\0after', 'before\rafter\r\nmore', 'before\nafter']) {
      const errors = errorsFor({ [name]: bad });
      const named = errors.filter((e) => e.startsWith(`${name}:`) || e.startsWith(`${name}=`));
      if (list && !bad.includes('\0')) continue; // lists take line breaks as separators; their entries are validated
      assert.ok(named.length > 0, `${name}=${JSON.stringify(bad)} was accepted: ${errors.join('; ')}`);
      assert.ok(named.every((e) => !e.includes('after')), `${name}: the value was shown: ${named.join('; ')}`);
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

// README's environment reference is generated from the schema; this fails when they drift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { REFERENCE_BEGIN, REFERENCE_END, renderEnvReference } from '../../src/config/reference.ts';
import { envReference } from '../../src/config/load.ts';

test('README env reference matches the schema (regenerate: node dist/cli.js env-reference)', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf(REFERENCE_BEGIN);
  const end = readme.indexOf(REFERENCE_END);
  assert.ok(start >= 0 && end > start, 'README lacks the generated env reference block');
  assert.equal(readme.slice(start, end + REFERENCE_END.length + 1), renderEnvReference());
});

test('no variable name ends in _PORT (Kubernetes service variables would collide)', () => {
  for (const { name } of envReference()) assert.ok(!name.endsWith('_PORT'), name);
});

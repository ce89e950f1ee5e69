// compose.yaml: valid for a Compose implementation, hardened as documented, and .env.example
// documents every variable of the environment contract.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ROOT, composeService, host, log, missing } from './harness.ts';

test('compose.yaml is accepted by a Compose implementation', async (t) => {
  // Compose v2 plugin first, then Debian's docker-compose (v1).
  const candidates: Array<[string, string[]]> = [['docker', ['compose']], ['docker-compose', []]];
  let found: [string, string[]] | undefined;
  for (const [cmd, pre] of candidates) {
    if ((await host(cmd, [...pre, 'version'])).code === 0) {
      found = [cmd, pre];
      break;
    }
  }
  if (!found) return missing(t, 'no Compose implementation here (apt-get install docker-compose, or the docker compose plugin)');
  const dir = mkdtempSync(join(os.tmpdir(), 'relaybox-compose-'));
  try {
    cpSync(join(ROOT, 'compose.yaml'), join(dir, 'compose.yaml'));
    cpSync(join(ROOT, '.env.example'), join(dir, '.env'));
    // A value with $ in single quotes must reach the container literally.
    const hash = "{SHA512-CRYPT}$6$salt$hashvalue";
    writeFileSync(join(dir, '.env'), `${readFileSync(join(dir, '.env'), 'utf8')}\nMAIL_USERS='a@relaybox.test:${hash}'\n`);
    const [cmd, pre] = found;
    const r = await host(cmd, [...pre, '-f', 'compose.yaml', 'config'], { cwd: dir });
    assert.equal(r.code, 0, r.output);
    log(`${cmd} ${[...pre, 'config'].join(' ')}: valid`);
    const rendered = parseYaml(r.output.slice(r.output.indexOf('services:'))) as { services: Record<string, { environment?: Record<string, string> }> };
    const users = rendered.services.relaybox?.environment?.MAIL_USERS ?? '';
    // `config` prints $ escaped as $$ for reuse as a Compose file.
    assert.equal(users.replaceAll('$$', '$'), `a@relaybox.test:${hash}`, 'single-quoted $ value changed by Compose');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compose.yaml: least privilege and operations settings', () => {
  const s = composeService();
  assert.equal(s.image, 'relaybox:local');
  assert.ok(s.build, 'build: .');
  assert.deepEqual(s.cap_drop, ['ALL']);
  const allowed = new Set(['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'NET_BIND_SERVICE', 'KILL', 'SYS_CHROOT']);
  for (const cap of s.cap_add ?? []) assert.ok(allowed.has(cap), `unexpected capability ${cap}`);
  assert.ok(s.security_opt?.includes('no-new-privileges:true'));
  assert.equal(s.read_only, true);
  assert.equal(s.restart, 'unless-stopped');
  assert.ok(s.stop_grace_period, 'stop_grace_period');
  assert.ok(s.healthcheck?.test?.length, 'healthcheck');
  assert.equal(s.env_file, '.env');
  assert.ok(s.volumes?.some((v) => v.endsWith(':/var/lib/relaybox')), 'a volume for STATE_DIR');
  const ports = (s.ports ?? []).map(String);
  for (const p of [25, 465, 587, 143, 993]) assert.ok(ports.some((e) => e.endsWith(`:${p}`)), `port ${p} published`);
  assert.ok(ports.includes('127.0.0.1:8080:8080'), 'HTTP published on 127.0.0.1 only');
});

test('.env.example documents every variable of the environment contract, with no secret', async () => {
  const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
  const { envSchema } = (await import(join(ROOT, 'src/config/schema.ts'))) as { envSchema: { shape?: Record<string, unknown>; def?: { in?: { shape?: Record<string, unknown> } } } };
  // envSchema is object().superRefine().transform(): find the object's shape.
  const find = (s: any, depth = 0): Record<string, unknown> | undefined =>
    depth > 6 || !s ? undefined : s.shape ?? find(s.def?.in ?? s._zod?.def?.in ?? s.def?.schema, depth + 1);
  const shape = find(envSchema);
  assert.ok(shape, 'cannot find the variables in src/config/schema.ts');
  const names = Object.keys(shape);
  assert.ok(names.length >= 20, names.join(' '));
  for (const name of names) assert.match(example, new RegExp(`^#?${name}=`, 'm'), `.env.example does not list ${name}`);
  // Only placeholders: every assignment of a user or password is empty or commented out.
  for (const line of example.split('\n').filter((l) => /^(MAIL_USERS|RELAY_PASSWORD|RELAY_USERNAME)=/.test(l))) {
    assert.match(line, /=$/, `.env.example must not set a credential: ${line}`);
  }
});

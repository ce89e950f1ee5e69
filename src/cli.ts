#!/usr/bin/env node
// relaybox command line. Each command loads only the modules it needs (`run` is the only one that
// needs the supervisor, fastify and prom-client).
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import type { LoadResult } from './config/load.ts';
import { HASH_SCHEMES } from './config/values.ts';
import { EXIT_CONFIG, EXIT_FAILURE } from './exit.ts';
import { ADMIN_USAGE } from './cli/usage.ts';

// Compiled code of the modules kept across starts (~30 ms of each); the image ships it made
// (NODE_COMPILE_CACHE). Everything below is imported after this, so all of it is cached.
enableCompileCache(process.env.NODE_COMPILE_CACHE || `${tmpdir()}/relaybox-node-compile-cache`);

const USAGE = `usage: relaybox <command>
  run                         start the supervisor (Dovecot, Postfix, /health, /ready, /metrics)
  check-config [--render DIR] validate the environment and print the effective config (secrets masked);
                              --render also writes the daemons' files into DIR
  hash-password [--scheme S]  read a password on stdin, print a hash for MAIL_USERS (S: ${HASH_SCHEMES.join(', ')})
  selftest                    test the running instance: EHLO, STARTTLS, a wrong password refused, an
                              unauthenticated relay refused, an authenticated transaction up to RCPT
                              (SELFTEST_USER/SELFTEST_PASSWORD); one line per step, exit 1 on a failure
  dns [--check]               print the DNS records to publish for every domain (MX, SPF, DKIM, DMARC,
                              MTA-STS with its policy file, TLS-RPT, TLSA with DANE_INBOUND); --check looks
                              them up (and fetches the MTA-STS policy) and says what is missing or differs
  dkim-keygen --domain D [--domain D2...] [--selector S] [--bits N] --out DIR
                              make DKIM keys DIR/<domain>.<selector>.key for DKIM_KEY_DIR (a secret), print the records
  env-reference               print the environment variable reference (markdown)
Operating the running supervisor (its control socket STATE_DIR/control.sock):
${ADMIN_USAGE}`;

function fail(lines: string[], code = EXIT_CONFIG): never {
  for (const line of lines) process.stderr.write(`relaybox: ${line}\n`);
  process.exit(code);
}

async function validConfig(what: string): Promise<Extract<LoadResult, { ok: true }>> {
  const { loadConfig } = await import('./config/load.ts');
  const result = loadConfig(process.env);
  if (!result.ok) fail([`configuration is invalid; ${what}:`, ...result.errors]);
  return result;
}

async function run(): Promise<void> {
  const { loadConfig } = await import('./config/load.ts');
  const result = loadConfig(process.env);
  const { createLogger } = await import('./log.ts');
  const root = await createLogger(result.ok ? result.config.log : undefined);
  const log = root.child({ service: 'supervisor' });
  if (!result.ok) {
    for (const error of result.errors) log.fatal({ event: 'config_invalid' }, error);
    fail(['configuration is invalid; no daemon was started:', ...result.errors]);
  }
  for (const warning of result.warnings) log.warn({ event: 'config_warning' }, warning);
  const { run: runApp } = await import('./app.ts');
  process.exit(await runApp(result.config, root));
}

async function checkConfig(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { render: { type: 'string' } } });
  const { config, warnings } = await validConfig('nothing was started');
  const { maskedConfig } = await import('./config/load.ts');
  const { allowedTrustedGateways, hostProblems } = await import('./host/preflight.ts');
  const problems = hostProblems(config);
  if (problems.length > 0) fail(problems.map((problem) => problem.message));
  for (const gateway of allowedTrustedGateways(config)) warnings.push(`TRUSTED_NETWORKS contains ${gateway}, this container's default gateway (allowed by TRUSTED_NETWORKS_INCLUDE_GATEWAY=yes)`);
  for (const warning of warnings) process.stderr.write(`relaybox: warning: ${warning}\n`);
  process.stdout.write(`${JSON.stringify(maskedConfig(config), null, 2)}\n`);
  if (values.render) {
    const [{ resolveRenderInput }, { renderAll }, { writeRendered }] = await Promise.all([import('./host/render-input.ts'), import('./render/index.ts'), import('./host/files.ts')]);
    const files = renderAll(await resolveRenderInput(config, { create: false }));
    const written = writeRendered(files, { rebase: { from: config.stateDir, to: values.render } });
    process.stderr.write(`relaybox: rendered ${written.length} files into ${values.render}\n`);
  }
}

async function hashPasswordCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { scheme: { type: 'string', default: 'BLF-CRYPT' } } });
  const scheme = HASH_SCHEMES.find((s) => s === values.scheme.toUpperCase());
  if (!scheme) fail([`hash-password: --scheme ${values.scheme} is not supported; use one of ${HASH_SCHEMES.join(', ')}`]);
  if (process.stdin.isTTY) process.stderr.write('Password (then Enter): ');
  const password = readFileSync(0, 'utf8').split(/\r?\n/)[0] ?? '';
  if (password.length === 0) fail(['hash-password: no password on stdin; pipe it in, e.g. printf "%s\\n" "$PASSWORD" | relaybox hash-password']);
  const { hashPassword } = await import('./host/password.ts');
  process.stdout.write(`${await hashPassword(password, scheme)}\n`);
}

async function selftest(): Promise<void> {
  const { config } = await validConfig('nothing was tested');
  const { runSelftest } = await import('./selftest/selftest.ts');
  const steps = await runSelftest({ config, credentials: config.selftest.credentials }, (step) =>
    process.stdout.write(`${step.status.toUpperCase().padEnd(4)} ${step.name}: ${step.detail}\n`),
  );
  process.exit(steps.some((step) => step.status === 'fail') ? 1 : 0);
}

async function dns(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { check: { type: 'boolean', default: false } } });
  const { config } = await validConfig('nothing was looked up');
  const [{ dnsCommand }, { createLogger }] = await Promise.all([import('./dns/commands.ts'), import('./log.ts')]);
  const log = (await createLogger({ level: 'warn', format: 'json' }, 2)).child({ service: 'dns' });
  process.exit(await dnsCommand(config, values.check, log, (line) => process.stdout.write(`${line}\n`)));
}

async function dkimKeygen(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { domain: { type: 'string', multiple: true }, selector: { type: 'string', default: 'relaybox' }, bits: { type: 'string', default: '2048' }, out: { type: 'string' } } });
  const { parseDomain, parseSelector } = await import('./config/values.ts');
  const domains = (values.domain ?? []).map((raw) => parseDomain(raw));
  const selector = parseSelector(values.selector);
  const bits = Number(values.bits);
  const problems = [
    ...(domains.length === 0 ? ['--domain: give at least one domain to sign for'] : []),
    ...domains.flatMap((d) => (d.ok ? [] : [`--domain: ${d.message}`])),
    ...(selector.ok ? [] : [`--selector: ${selector.message}`]),
    ...(![1024, 2048, 3072, 4096].includes(bits) ? ['--bits: 1024, 2048, 3072 or 4096'] : []),
    ...(values.out ? [] : ['--out: the directory to write the keys into (then mount it as DKIM_KEY_DIR)']),
  ];
  if (problems.length > 0 || !selector.ok) fail([`dkim-keygen: ${problems.join('; ')}`]);
  const { dkimKeygenCommand } = await import('./dns/commands.ts');
  await dkimKeygenCommand(domains.flatMap((d) => (d.ok ? [d.value] : [])), selector.value, values.out!, bits, (line) => process.stdout.write(`${line}\n`));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case 'run':
      return run();
    case 'check-config':
      return checkConfig(args);
    case 'hash-password':
      return hashPasswordCommand(args);
    case 'selftest':
      return selftest();
    case 'dns':
      return dns(args);
    case 'dkim-keygen':
      return dkimKeygen(args);
    case 'status':
    case 'queue':
    case 'users':
    case 'bans':
    case 'dkim': {
      const { adminCommand } = await import('./cli/admin-commands.ts');
      process.exit(await adminCommand(command, args, (text) => process.stdout.write(`${text}\n`), (text) => process.stderr.write(`${text}\n`)));
    }
    case 'env-reference': {
      const { renderEnvReference } = await import('./config/reference.ts');
      process.stdout.write(renderEnvReference());
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail([`unknown command "${command}"`, USAGE]);
  }
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  fail([`error: ${(error as Error).message}`], EXIT_FAILURE);
}

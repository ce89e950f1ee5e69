#!/usr/bin/env node
// relaybox command line: run | check-config [--render DIR] | hash-password [--scheme S] | env-reference
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { loadConfig, maskedConfig } from './config/load.ts';
import { renderEnvReference } from './config/reference.ts';
import { createLogger } from './log.ts';
import { renderAll } from './render/index.ts';
import { statePaths } from './render/paths.ts';
import { writeRendered } from './state/files.ts';
import { HASH_SCHEMES, hashPassword, type HashScheme } from './state/password.ts';
import { userIds, MAILBOX_USER } from './state/accounts.ts';
import { runSelftest } from './selftest/selftest.ts';
import { EXIT_CONFIG, runSupervisor } from './supervisor/run.ts';



const USAGE = `usage: relaybox <command>
  run                         start the supervisor (Dovecot, Postfix, /health and /ready)
  check-config [--render DIR] validate the environment and print the effective config (secrets masked);
                              --render also writes the Postfix/Dovecot files into DIR
  hash-password [--scheme S]  read a password on stdin, print a hash for MAIL_USERS (S: ${HASH_SCHEMES.join(', ')})
  selftest                    test the running instance: EHLO, STARTTLS, a wrong password refused, an
                              unauthenticated relay refused, an authenticated transaction up to RCPT
                              (SELFTEST_USER/SELFTEST_PASSWORD); one line per step, exit 1 on a failure
  env-reference               print the environment variable reference (markdown)`;

function fail(lines: string[], code = EXIT_CONFIG): never {
  for (const line of lines) process.stderr.write(`relaybox: ${line}\n`);
  process.exit(code);
}

async function checkConfig(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { render: { type: 'string' } } });
  const result = loadConfig(process.env);
  if (!result.ok) fail(['configuration is invalid; nothing was started:', ...result.errors]);
  for (const warning of result.warnings) process.stderr.write(`relaybox: warning: ${warning}\n`);
  process.stdout.write(`${JSON.stringify(maskedConfig(result.config), null, 2)}\n`);
  if (values.render) {
    const { config } = result;
    const paths = statePaths(config.stateDir);
    const files = renderAll({
      config,
      users: config.users,
      tls: config.tls ?? { certFile: paths.generatedCert, keyFile: paths.generatedKey },
      vmail: userIds(MAILBOX_USER) ?? { uid: 5000, gid: 5000 },
    });
    const written = writeRendered(files, { rebase: { from: config.stateDir, to: values.render } });
    process.stderr.write(`relaybox: rendered ${written.length} files into ${values.render}\n`);
  }
}

async function hashPasswordCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { scheme: { type: 'string', default: 'ARGON2ID' } } });
  const scheme = values.scheme.toUpperCase();
  if (!HASH_SCHEMES.includes(scheme as HashScheme)) fail([`hash-password: --scheme ${values.scheme} is not supported; use one of ${HASH_SCHEMES.join(', ')}`]);
  if (process.stdin.isTTY) process.stderr.write('Password (then Enter): ');
  const input = readFileSync(0, 'utf8');
  const password = input.split(/\r?\n/)[0] ?? '';
  if (password.length === 0) fail(['hash-password: no password on stdin; pipe it in, e.g. printf "%s\\n" "$PASSWORD" | relaybox hash-password']);
  process.stdout.write(`${await hashPassword(password, scheme as HashScheme)}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case 'run': {
      const result = loadConfig(process.env);
      const root = createLogger(result.ok ? result.config.log : undefined);
      const log = root.child({ service: 'supervisor' });
      if (!result.ok) {
        for (const error of result.errors) log.fatal({ event: 'config_invalid' }, error);
        fail(['configuration is invalid; no daemon was started:', ...result.errors]);
      }
      for (const warning of result.warnings) log.warn({ event: 'config_warning' }, warning);
      process.exit(await runSupervisor(result.config, root));
      return;
    }
    case 'check-config':
      return checkConfig(args);
    case 'hash-password':
      return hashPasswordCommand(args);
    case 'selftest': {
      const result = loadConfig(process.env);
      if (!result.ok) fail(['configuration is invalid:', ...result.errors]);
      const steps = await runSelftest({ config: result.config, credentials: result.config.selftest.credentials }, (step) =>
        process.stdout.write(`${step.status.toUpperCase().padEnd(4)} ${step.name}: ${step.detail}\n`),
      );
      process.exit(steps.some((step) => step.status === 'fail') ? 1 : 0);
    }
    case 'env-reference':
      process.stdout.write(renderEnvReference());
      return;
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
  fail([`error: ${(error as Error).message}`], 1);
}

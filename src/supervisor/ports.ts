// Before launch: every enabled port must be free; a taken one is named with the process holding it.
import { createServer } from 'node:net';
import type { Config } from '../config/schema.ts';
import { portHolder } from './proc.ts';

export const PORT_VARIABLES = {
  smtp: 'PORT_SMTP',
  submission: 'PORT_SUBMISSION',
  submissions: 'PORT_SUBMISSIONS',
  imap: 'PORT_IMAP',
  imaps: 'PORT_IMAPS',
  http: 'PORT_HTTP',
} as const satisfies Record<keyof Config['ports'], string>;

export function enabledPorts(config: Config): Array<{ name: keyof Config['ports']; port: number }> {
  return (Object.keys(PORT_VARIABLES) as Array<keyof Config['ports']>).map((name) => ({ name, port: config.ports[name] })).filter(({ port }) => port > 0);
}

function tryBind(port: number, host: string | undefined): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** One message per enabled port that cannot be bound, naming the variable and the holder. */
export async function portProblems(config: Config): Promise<string[]> {
  const problems: string[] = [];
  for (const { name, port } of enabledPorts(config)) {
    const error = await tryBind(port, config.bindAddress);
    if (!error) continue;
    const where = `${config.bindAddress ?? '0.0.0.0'} port ${port}`;
    if (error.code === 'EADDRINUSE') {
      const holder = portHolder(port);
      const who = holder ? `process ${holder.pid} (${holder.command})` : 'another process (not visible from here)';
      problems.push(`${PORT_VARIABLES[name]}=${port}: bind ${where}: Address already in use, held by ${who}; stop it or choose another ${PORT_VARIABLES[name]}`);
    } else {
      problems.push(`${PORT_VARIABLES[name]}=${port}: bind ${where}: ${error.code ?? error.message}`);
    }
  }
  return problems;
}

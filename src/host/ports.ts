// Before launch: every enabled listener's port must be free; a taken one is named with the process holding it.
import { createServer } from 'node:net';
import { enabledListeners, type Ports } from '../listeners.ts';
import { portHolder } from './processes.ts';

function tryBind(port: number, host: string | undefined): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** One message per enabled port that cannot be bound, naming the variable and the holder. */
export async function portProblems(ports: Ports, bindAddress: string | undefined): Promise<string[]> {
  const problems: string[] = [];
  for (const { variable, port } of enabledListeners(ports)) problems.push(...(await bindProblem(variable, port, bindAddress)));
  return problems;
}

/** [] when the port can be bound; else one message naming the variable and the holder. */
export async function bindProblem(variable: string, port: number, bindAddress: string | undefined): Promise<string[]> {
  const error = await tryBind(port, bindAddress);
  if (!error) return [];
  const where = `${bindAddress ?? '0.0.0.0'} port ${port}`;
  if (error.code !== 'EADDRINUSE') return [`${variable}=${port}: bind ${where}: ${error.code ?? error.message}`];
  const holder = portHolder(port);
  const who = holder ? `process ${holder.pid} (${holder.command})` : 'another process (not visible from here)';
  return [`${variable}=${port}: bind ${where}: Address already in use, held by ${who}; stop it or choose another ${variable}`];
}

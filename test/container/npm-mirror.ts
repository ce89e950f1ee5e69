// A minimal read-only npm registry pass-through on 127.0.0.1.
//
// Why: on the project's machines npm inside a container cannot reach the npm
// registry (TLS fails there) while the host can. The image build runs with
// host networking, so `npm ci` in the build stage is pointed at this server
// through the NPM_CONFIG_REGISTRY build arg; every GET is forwarded to the
// upstream registry over the host's network. Packuments have their tarball
// URLs rewritten to point back here, so tarballs come through as well.
//
// Used in-process by the container test harness; `docker/npm-mirror.sh` runs
// it standalone for manual builds. Only GET/HEAD are forwarded; nothing is
// published or stored.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface Mirror {
  url: string;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'content-encoding', 'content-length', 'host',
]);

export async function startNpmMirror(opts: { port?: number; upstream?: string } = {}): Promise<Mirror> {
  const upstream = (opts.upstream ?? process.env.RELAYBOX_NPM_UPSTREAM ?? 'https://registry.npmjs.org').replace(/\/+$/, '');
  let self = '';
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && !HOP_BY_HOP.has(k) && k !== 'authorization' && k !== 'accept-encoding') headers[k] = v;
      }
      const up = await fetch(upstream + req.url, { method: req.method, headers, redirect: 'follow' });
      const out: Record<string, string> = {};
      up.headers.forEach((v, k) => { if (!HOP_BY_HOP.has(k)) out[k] = v; });
      const type = up.headers.get('content-type') ?? '';
      if (type.includes('json') && req.method === 'GET') {
        // Rewrite tarball URLs so that they come back through us.
        const body = (await up.text()).replaceAll(upstream + '/', self + '/');
        out['content-length'] = String(Buffer.byteLength(body));
        res.writeHead(up.status, out).end(body);
      } else {
        res.writeHead(up.status, out);
        if (up.body && req.method === 'GET') Readable.fromWeb(up.body as any).pipe(res);
        else res.end();
      }
    } catch (err) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`npm mirror: upstream error: ${(err as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: self + '/',
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

// Standalone: node test/container/npm-mirror.ts [port]
if (import.meta.main) {
  const port = Number(process.argv[2] ?? process.env.RELAYBOX_NPM_MIRROR_PORT ?? 4873);
  const m = await startNpmMirror({ port });
  console.log(m.url);
}

// Resident memory of a Node process after importing the given modules (nothing else runs):
//   node test/bench/rss-probe.mjs fastify zod ...   # prints one JSON line {rss, heapUsed, ...} in MiB
// Plain JavaScript on purpose: a .ts entry point would load Node's type stripper (~20 MiB) too.
// A specifier starting with "dist/" is taken relative to the repository root.
const ROOT = new URL('../../', import.meta.url);
for (const name of process.argv.slice(2)) {
  await import(name.startsWith('dist/') ? new URL(name, ROOT).href : name);
}
await new Promise((resolve) => setTimeout(resolve, 300));
const m = process.memoryUsage();
const mib = (n) => Math.round((n / 1048576) * 10) / 10;
process.stdout.write(`${JSON.stringify({ rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external) })}\n`);

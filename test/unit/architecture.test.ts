// The shape of src/: imports flow one way through the stages (env → config → render → host →
// daemons → supervision → operations → HTTP → the appliance, composed by app.ts), there are no import cycles, and no file grows
// past 300 lines. A test, so a change that breaks the shape fails like any other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/instance.ts';

const SRC = join(ROOT, 'src');

/** Stage of each top-level module or folder: a module may import only from its own stage or earlier ones. */
const STAGES: Record<string, number> = {
  'listeners.ts': 0,
  'exit.ts': 0,
  protocol: 0,
  config: 1,
  'log.ts': 1,
  render: 2,
  host: 3,
  daemons: 4,
  supervision: 5,
  abuse: 6,
  metrics: 6,
  selftest: 6,
  dns: 6,
  replicas: 6,
  srs: 6,
  outbound: 6,
  operations: 7,
  http: 8,
  appliance: 9,
  'app.ts': 10,
  'cli.ts': 11,
  cli: 11,
};

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file (static and dynamic), resolved to absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((specifier) => resolve(dirname(file), specifier));
}

const stageOf = (file: string) => {
  const top = relative(SRC, file).split('/')[0]!;
  const stage = STAGES[top];
  if (stage === undefined) throw new Error(`src/${top} has no stage in architecture.test.ts: give it one`);
  return { top, stage };
};

function stageViolations(files: string[], imports: (file: string) => string[]): string[] {
  return files.flatMap((file) => {
    const from = stageOf(file);
    return imports(file)
      .map((target) => ({ target, to: stageOf(target) }))
      .filter(({ to }) => to.top !== from.top && to.stage > from.stage)
      .map(({ target, to }) => `src/${relative(SRC, file)} (stage ${from.stage}) imports src/${relative(SRC, target)} (stage ${to.stage})`);
  });
}

function importCycles(files: string[], imports: (file: string) => string[]): string[] {
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '));
      return;
    }
    state.set(file, 'visiting');
    for (const target of imports(file)) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of files) visit(file, []);
  return cycles;
}

test('imports run only from later stages to earlier ones', () => {
  assert.deepEqual(stageViolations(sourceFiles(), importsOf), []);
});

test('no import cycles in src/', () => {
  assert.deepEqual(importCycles(sourceFiles(), importsOf), []);
});

test('nothing but cli.ts imports the composition root', () => {
  const importers = sourceFiles().filter((file) => importsOf(file).includes(join(SRC, 'app.ts')));
  assert.deepEqual(importers.map((file) => relative(SRC, file)), ['cli.ts']);
});

test('no source file over 300 lines', () => {
  const long = sourceFiles()
    .map((file) => ({ file: relative(SRC, file), lines: readFileSync(file, 'utf8').split('\n').length }))
    .filter(({ lines }) => lines > 300);
  assert.deepEqual(long, []);
});

test('the checks catch what they are for: an upward import and a cycle', () => {
  const a = join(SRC, 'render/a.ts');
  const b = join(SRC, 'supervision/b.ts');
  const graph: Record<string, string[]> = { [a]: [b], [b]: [a] };
  assert.deepEqual(stageViolations([a, b], (file) => graph[file] ?? []), ['src/render/a.ts (stage 2) imports src/supervision/b.ts (stage 5)']);
  assert.equal(importCycles([a, b], (file) => graph[file] ?? []).length, 1);
});

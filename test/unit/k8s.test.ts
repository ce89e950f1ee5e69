// The Kubernetes manifests in docker/k8s: valid against the Kubernetes API schemas (kubernetes-models'
// JSON-schema validators, plus its TypeScript types for unknown fields), and consistent with what the
// image really serves. Every expected value is read from its source of truth: the probe paths from
// src/http/routes.ts, ports and variable names from the env schema, capabilities and security options
// from compose.yaml, the volume and stop signal from the Dockerfile, the shutdown deadline from the
// supervisor. The mutation tests at the end prove that each check can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parse, parseAllDocuments } from 'yaml';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { envReference, loadConfig } from '../../src/config/load.ts';
import { ROUTES } from '../../src/http/routes.ts';
import { LISTENERS } from '../../src/listeners.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S_DIR = join(ROOT, 'docker/k8s');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

type Obj = Record<string, any>;
interface Doc {
  file: string;
  index: number;
  doc: Obj;
}

// ------------------------------------------------------------------ the manifests ----

function manifestFiles(): string[] {
  return readdirSync(K8S_DIR)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();
}

function loadDocs(version: '1.1' | '1.2' = '1.2'): Doc[] {
  const docs: Doc[] = [];
  for (const file of manifestFiles()) {
    parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'), { version }).forEach((parsed, index) => {
      if (parsed.errors.length > 0) throw new Error(`${file}#${index}: ${parsed.errors.map(String).join('; ')}`);
      const doc = parsed.toJS() as Obj | null;
      if (doc !== null) docs.push({ file, index, doc });
    });
  }
  return docs;
}

// ----------------------------------------------------------- the sources of truth ----

interface Truth {
  routes: { health: string; ready: string };
  env: Map<string, { default?: string; secret?: boolean }>;
  compose: { capAdd: string[]; capDrop: string[]; securityOpt: string[]; readOnly: boolean; tmpfs: string[] };
  dockerfile: { volumes: string[]; stopSignal: string | undefined };
  shutdownDeadlineMs: number;
  handledSignals: string[];
}

function dockerInstruction(dockerfile: string, name: string): string[] {
  return [...dockerfile.matchAll(new RegExp(`^${name}\\s+(.+)$`, 'gim'))].map((m) => m[1]!.trim());
}

function truth(): Truth {
  const compose = parse(read('compose.yaml')) as Obj;
  const service = compose.services.relaybox as Obj;
  const dockerfile = read('Dockerfile');
  const volumes = dockerInstruction(dockerfile, 'VOLUME').flatMap((arg) =>
    arg.startsWith('[') ? (JSON.parse(arg) as string[]) : arg.split(/\s+/),
  );
  // The running appliance's lifecycle (src/appliance): its shutdown deadline and the signals it handles.
  const run = readdirSync(join(ROOT, 'src/appliance')).map((file) => read(`src/appliance/${file}`)).join('\n');
  const deadline = /SHUTDOWN_DEADLINE_MS\s*=\s*([\d_]+)/.exec(run);
  if (!deadline) throw new Error('src/appliance: SHUTDOWN_DEADLINE_MS not found');
  return {
    routes: { ...ROUTES },
    env: new Map(envReference().map((v) => [v.name, { default: v.default, secret: v.secret }])),
    compose: {
      capAdd: service.cap_add ?? [],
      capDrop: service.cap_drop ?? [],
      securityOpt: service.security_opt ?? [],
      readOnly: service.read_only === true,
      tmpfs: ((service.tmpfs ?? []) as string[]).map((entry) => entry.split(':')[0]!),
    },
    dockerfile: { volumes, stopSignal: dockerInstruction(dockerfile, 'STOPSIGNAL').at(-1) },
    shutdownDeadlineMs: Number(deadline[1]!.replaceAll('_', '')),
    handledSignals: [...run.matchAll(/process\.(?:once|on)\('(SIG[A-Z0-9]+)'/g)].map((m) => m[1]!),
  };
}

// ------------------------------------------------------------ consistency checks ----

const sorted = (list: Iterable<string>) => [...list].sort();
const same = (a: Iterable<string>, b: Iterable<string>) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

function only(docs: Doc[], kind: string, problems: string[], name?: string): Obj | undefined {
  const found = docs.filter((d) => d.doc.kind === kind && (name === undefined || d.doc.metadata?.name === name));
  if (found.length !== 1) {
    problems.push(`expected exactly one ${kind}${name ? ` named ${name}` : ''}, found ${found.length}`);
    return undefined;
  }
  return found[0]!.doc;
}

/** The environment the container gets: its env entries and the ConfigMaps it takes with envFrom. */
function containerEnv(docs: Doc[], container: Obj, problems: string[]): Map<string, { value: string | undefined; from: string }> {
  const env = new Map<string, { value: string | undefined; from: string }>();
  for (const source of container.envFrom ?? []) {
    if (source.prefix) problems.push(`envFrom with prefix ${source.prefix}: the variable names would not be relaybox's`);
    if (!source.configMapRef) {
      problems.push(`envFrom other than a configMapRef: ${JSON.stringify(source)} (secrets go in files, via *_FILE)`);
      continue;
    }
    const map = docs.find((d) => d.doc.kind === 'ConfigMap' && d.doc.metadata?.name === source.configMapRef.name);
    if (!map) {
      problems.push(`envFrom names ConfigMap ${source.configMapRef.name}, which is not in docker/k8s`);
      continue;
    }
    for (const [name, value] of Object.entries(map.doc.data ?? {})) env.set(name, { value: String(value), from: `ConfigMap ${source.configMapRef.name}` });
  }
  for (const entry of container.env ?? []) env.set(entry.name, { value: entry.value, from: 'container env' });
  return env;
}

function consistencyProblems(docs: Doc[], t: Truth): string[] {
  const problems: string[] = [];
  const sts = only(docs, 'StatefulSet', problems);
  if (!sts) return problems;
  if (sts.spec.replicas !== 1) problems.push(`StatefulSet replicas is ${sts.spec.replicas}, must be 1 (one queue, one set of mailboxes)`);
  const pod = sts.spec.template.spec as Obj;
  const container = (pod.containers as Obj[]).find((c) => c.name === 'relaybox');
  if (!container) return [...problems, 'no container named relaybox'];
  const env = containerEnv(docs, container, problems);

  // Variable names: every one is relaybox's, none could be mistaken for a Kubernetes service variable,
  // and no secret is passed as a plain value.
  for (const [name, { from }] of env) {
    if (!t.env.has(name)) problems.push(`${name} (${from}) is not a variable relaybox reads (envReference)`);
    if (name.endsWith('_PORT')) problems.push(`${name} (${from}) ends in _PORT, which Kubernetes service variables use`);
    if (t.env.get(name)?.secret) problems.push(`${name} (${from}) is a secret: pass it as a file with ${name}_FILE`);
  }
  const effective = (name: string) => env.get(name)?.value ?? t.env.get(name)?.default;

  // Ports: the container declares exactly the enabled PORT_* listeners.
  // Ports: the listeners of the container's ROLE (src/listeners.ts).
  const role = effective('ROLE') ?? 'all';
  const portVars = LISTENERS.filter((row) => (row.inRoles as readonly string[]).includes(role)).map((row) => row.variable);
  const expectedPorts = new Map(portVars.map((name) => [name, Number(effective(name))] as const).filter(([, port]) => port > 0));
  const containerPorts = new Map<string, number>((container.ports ?? []).map((p: Obj) => [p.name, p.containerPort]));
  for (const [name, port] of expectedPorts) {
    if (![...containerPorts.values()].includes(port)) problems.push(`${name} is ${port}, but the container declares no containerPort ${port}`);
  }
  for (const [name, port] of containerPorts) {
    if (![...expectedPorts.values()].includes(port)) problems.push(`containerPort ${name}=${port} is none of the PORT_* values`);
  }
  for (const p of container.ports ?? []) {
    if (p.hostPort !== undefined) problems.push(`containerPort ${p.name} has a hostPort`);
    if ((p.protocol ?? 'TCP') !== 'TCP') problems.push(`containerPort ${p.name} is ${p.protocol}, not TCP`);
  }
  const resolve = (port: number | string) => (typeof port === 'number' ? port : containerPorts.get(port));
  const httpPort = expectedPorts.get('PORT_HTTP');

  // Probes: the paths the HTTP server serves, on PORT_HTTP.
  const probes: Array<[string, string]> = [
    ['livenessProbe', t.routes.health],
    ['readinessProbe', t.routes.ready],
    ['startupProbe', t.routes.ready],
  ];
  for (const [probe, path] of probes) {
    const get = container[probe]?.httpGet;
    if (!get) {
      problems.push(`${probe} is missing or not an httpGet`);
      continue;
    }
    if (get.path !== path) problems.push(`${probe} path is ${get.path}, the server serves ${path}`);
    if (httpPort === undefined || resolve(get.port) !== httpPort) problems.push(`${probe} port ${get.port} is not PORT_HTTP (${httpPort})`);
  }

  // Services: the mail Service publishes the mail ports under their standard numbers; the headless one
  // governs the StatefulSet; both select the pod.
  const labels = sts.spec.template.metadata?.labels ?? {};
  const selects = (selector: Obj | undefined) =>
    selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
  if (!selects(sts.spec.selector?.matchLabels)) problems.push('the StatefulSet selector does not match its pod labels');
  const mailPorts = [...expectedPorts].filter(([name]) => name !== 'PORT_HTTP').map(([, port]) => port);
  const mail = only(docs, 'Service', problems, 'relaybox');
  if (mail) {
    if (!selects(mail.spec.selector)) problems.push('Service relaybox does not select the relaybox pod');
    const published = (mail.spec.ports as Obj[]).map((p) => {
      const target = resolve(p.targetPort ?? p.port);
      if (target !== p.port) problems.push(`Service relaybox port ${p.port} goes to container port ${String(target)}`);
      return String(p.port);
    });
    if (!same(published, mailPorts.map(String))) problems.push(`Service relaybox publishes ${published.join(',')}, the mail ports are ${mailPorts.join(',')}`);
    if (mail.spec.type === 'LoadBalancer' || mail.spec.type === 'NodePort') {
      if (mail.spec.externalTrafficPolicy !== 'Local') problems.push('Service relaybox must keep client addresses (externalTrafficPolicy: Local): bans and rate limits are per address');
    }
  }
  const governing = only(docs, 'Service', problems, sts.spec.serviceName);
  if (governing) {
    if (governing.spec.clusterIP !== 'None') problems.push(`Service ${sts.spec.serviceName} (serviceName) is not headless`);
    if (!selects(governing.spec.selector)) problems.push(`Service ${sts.spec.serviceName} does not select the relaybox pod`);
    for (const p of governing.spec.ports ?? []) {
      if (resolve(p.targetPort ?? p.port) !== httpPort) problems.push(`Service ${sts.spec.serviceName} port ${p.port} is not PORT_HTTP`);
    }
  }
  // Service links would add <NAME>_SERVICE_HOST, <NAME>_PORT, ... to the environment.
  for (const d of docs.filter((x) => x.doc.kind === 'Service')) {
    const prefix = `${String(d.doc.metadata.name).toUpperCase().replaceAll('-', '_')}_`;
    for (const name of t.env.keys()) if (name.startsWith(prefix)) problems.push(`Service ${d.doc.metadata.name}'s link variables could collide with ${name}`);
  }

  // Security: compose.yaml's capabilities and options.
  const sc = container.securityContext ?? {};
  if (!same(sc.capabilities?.drop ?? [], t.compose.capDrop)) problems.push(`capabilities.drop ${JSON.stringify(sc.capabilities?.drop)} != compose cap_drop ${JSON.stringify(t.compose.capDrop)}`);
  const add: string[] = sc.capabilities?.add ?? [];
  if (new Set(add).size !== add.length) problems.push(`capabilities.add has duplicates: ${add.join(',')}`);
  if (!same(add, t.compose.capAdd)) problems.push(`capabilities.add ${add.join(',')} != compose cap_add ${t.compose.capAdd.join(',')}`);
  const noNewPrivileges = t.compose.securityOpt.some((opt) => /^no-new-privileges(:true)?$/.test(opt));
  if (noNewPrivileges && sc.allowPrivilegeEscalation !== false) problems.push('allowPrivilegeEscalation must be false (compose: no-new-privileges)');
  if (t.compose.readOnly && sc.readOnlyRootFilesystem !== true) problems.push('readOnlyRootFilesystem must be true (compose: read_only)');
  if (sc.privileged === true) problems.push('the container must not be privileged');
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) problems.push('the pod must not share host namespaces');

  // Volumes: STATE_DIR (the Dockerfile's VOLUME) on the claim template; compose's tmpfs as emptyDirs.
  const mounts = new Map<string, string>((container.volumeMounts ?? []).map((m: Obj) => [m.mountPath, m.name]));
  const claims = new Set((sts.spec.volumeClaimTemplates ?? []).map((c: Obj) => c.metadata.name));
  const volumes = new Map<string, Obj>((pod.volumes ?? []).map((v: Obj) => [v.name, v]));
  if (t.dockerfile.volumes.length === 0) problems.push('the Dockerfile declares no VOLUME');
  for (const path of t.dockerfile.volumes) {
    const name = mounts.get(path);
    if (name === undefined || !claims.has(name)) problems.push(`the Dockerfile's VOLUME ${path} is not mounted from a volumeClaimTemplate`);
  }
  const stateDir = effective('STATE_DIR');
  if (stateDir === undefined || !t.dockerfile.volumes.includes(stateDir)) problems.push(`STATE_DIR ${stateDir} is not the Dockerfile's VOLUME (${t.dockerfile.volumes.join(',')})`);
  for (const path of t.compose.tmpfs) {
    const name = mounts.get(path);
    if (name === undefined || !volumes.get(name)?.emptyDir) problems.push(`compose's tmpfs ${path} has no emptyDir mount`);
  }

  // Secrets as files: every *_FILE variable points at a key of a mounted Secret.
  for (const [name, { value }] of env) {
    if (!name.endsWith('_FILE') || !value) continue;
    // The deepest mount containing the path (/run/secrets/relaybox, not /run).
    const mount = ((container.volumeMounts ?? []) as Obj[])
      .filter((m) => value.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    const secretName = mount && volumes.get(mount.name)?.secret?.secretName;
    const secret = secretName && docs.find((d) => d.doc.kind === 'Secret' && d.doc.metadata.name === secretName)?.doc;
    const key = mount && value.slice(mount.mountPath.length + 1);
    if (!secret || !key || !(key in { ...secret.data, ...secret.stringData })) problems.push(`${name}=${value} is not a key of a Secret mounted there`);
  }

  // Stopping: the signal the runtime sends is one the supervisor handles, and the kubelet waits longer
  // than the supervisor's own deadline before SIGKILL.
  const stopSignal = container.lifecycle?.stopSignal ?? t.dockerfile.stopSignal ?? 'SIGTERM';
  if (!t.handledSignals.includes(stopSignal)) problems.push(`stop signal ${stopSignal} is not handled by the supervisor (${t.handledSignals.join(',')})`);
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (!(grace > t.shutdownDeadlineMs / 1000)) problems.push(`terminationGracePeriodSeconds ${grace} is not above the supervisor's shutdown deadline (${t.shutdownDeadlineMs} ms)`);

  // The Secret in the repository holds placeholders only.
  for (const d of docs.filter((x) => x.doc.kind === 'Secret')) {
    if (d.doc.data && Object.keys(d.doc.data).length > 0) problems.push(`Secret ${d.doc.metadata.name}: use stringData with visible placeholders, not data`);
    for (const [key, value] of Object.entries(d.doc.stringData ?? {})) {
      for (const line of String(value).split('\n')) {
        if (line.trim() === '' || line.trim().startsWith('#')) continue;
        if (!line.includes('REPLACE_WITH_')) problems.push(`Secret ${d.doc.metadata.name} key ${key} holds a value that is not a REPLACE_WITH_ placeholder`);
      }
    }
  }
  return problems;
}

// --------------------------------------------------------------- schema checks ----

const MODELS: Record<string, { model: new (data: any) => { validate(): void }; type: [string, string] }> = {
  'apps/v1/StatefulSet': { model: StatefulSet, type: ['kubernetes-models/apps/v1/StatefulSet', 'IStatefulSet'] },
  'v1/Service': { model: Service, type: ['kubernetes-models/v1/Service', 'IService'] },
  'v1/ConfigMap': { model: ConfigMap, type: ['kubernetes-models/v1/ConfigMap', 'IConfigMap'] },
  'v1/Secret': { model: Secret, type: ['kubernetes-models/v1/Secret', 'ISecret'] },
};

function schemaProblems(docs: Doc[]): string[] {
  const problems: string[] = [];
  for (const { file, index, doc } of docs) {
    const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
    if (!entry) {
      problems.push(`${file}#${index}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new entry.model(structuredClone(doc)).validate();
    } catch (error) {
      problems.push(`${file}#${index} (${doc.kind}): ${(error as Error).message}`);
    }
  }
  return problems;
}

/**
 * The JSON schemas accept unknown fields (as the API server does, dropping them with a warning), so a
 * misspelt `readinesProbe` would pass them. Type-check each manifest as an object literal of
 * kubernetes-models' interface instead: excess property checks reject every unknown field.
 */
function unknownFieldProblems(docs: Doc[]): string[] {
  const virtual = join(ROOT, 'test/unit/__k8s_manifests__.ts');
  const kinds = [...new Set(docs.map((d) => `${d.doc.apiVersion}/${d.doc.kind}`))].filter((k) => MODELS[k]);
  const header = kinds.map((k) => `import type { ${MODELS[k]!.type[1]} } from '${MODELS[k]!.type[0]}';`);
  const lines = docs.map(({ doc }, i) => {
    const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
    return entry ? `export const m${i}: ${entry.type[1]} = ${JSON.stringify(doc)};` : '';
  });
  const source = [...header, ...lines].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) =>
    name === virtual ? ts.createSourceFile(name, source, language) : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => name === virtual || fileExists.call(host, name);
  host.readFile = (name) => (name === virtual ? source : readFile.call(host, name));
  const program = ts.createProgram([virtual], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    if (diagnostic.file?.fileName !== virtual || diagnostic.start === undefined) return message;
    const line = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line - header.length;
    const d = docs[line];
    return d ? `${d.file}#${d.index} (${d.doc.kind}): ${message}` : message;
  });
}

// ------------------------------------------------------------------------ tests ----

test('docker/k8s has a StatefulSet, the Services, a ConfigMap and a Secret', () => {
  const kinds = loadDocs().map((d) => d.doc.kind);
  for (const kind of ['StatefulSet', 'Service', 'ConfigMap', 'Secret']) assert.ok(kinds.includes(kind), `no ${kind} in docker/k8s`);
});

test('kubectl (YAML 1.1) reads the manifests as this test (YAML 1.2) does', () => {
  assert.deepEqual(loadDocs('1.1'), loadDocs('1.2'));
});

test('every manifest validates against the Kubernetes API schemas (kubernetes-models)', () => {
  assert.deepEqual(schemaProblems(loadDocs()), []);
});

test('no manifest has a field the Kubernetes API does not know (kubernetes-models types)', () => {
  assert.deepEqual(unknownFieldProblems(loadDocs()), []);
});

test('the manifests match what the image serves: probes, ports, capabilities, volume, shutdown, variables', () => {
  assert.deepEqual(consistencyProblems(loadDocs(), truth()), []);
});

test('the sources of truth were found', () => {
  const t = truth();
  assert.ok(t.compose.capAdd.length > 0 && t.compose.capDrop.includes('ALL'), 'compose.yaml cap_add/cap_drop');
  assert.ok(t.dockerfile.volumes.includes('/var/lib/relaybox'), `Dockerfile VOLUME: ${t.dockerfile.volumes.join(',')}`);
  assert.ok(t.shutdownDeadlineMs >= 1000, `shutdown deadline ${t.shutdownDeadlineMs}`);
  assert.ok(t.handledSignals.includes('SIGTERM'), `handled signals: ${t.handledSignals.join(',')}`);
  assert.ok([...t.env.keys()].filter((n) => n.startsWith('PORT_')).length >= 6, 'PORT_* variables');
});

test('relaybox accepts the configuration the manifests give it (ConfigMap, env and the Secret files)', () => {
  const docs = loadDocs();
  const problems: string[] = [];
  const sts = only(docs, 'StatefulSet', problems)!;
  const pod = sts.spec.template.spec as Obj;
  const container = (pod.containers as Obj[]).find((c) => c.name === 'relaybox')!;
  const dir = mkdtempSync(join(tmpdir(), 'relaybox-k8s-'));
  try {
    // Lay out each mounted Secret under dir, and point the *_FILE variables there.
    const rebase = new Map<string, string>();
    for (const mount of container.volumeMounts as Obj[]) {
      const secretName = (pod.volumes as Obj[]).find((v) => v.name === mount.name)?.secret?.secretName;
      if (!secretName) continue;
      const secret = docs.find((d) => d.doc.kind === 'Secret' && d.doc.metadata.name === secretName)!.doc;
      const target = mkdtempSync(join(dir, 'secret-'));
      for (const [key, value] of Object.entries(secret.stringData ?? {})) writeFileSync(join(target, key), String(value));
      rebase.set(mount.mountPath, target);
    }
    const env: Record<string, string> = {};
    for (const [name, { value }] of containerEnv(docs, container, problems)) {
      let v = value ?? '';
      for (const [from, to] of rebase) if (v.startsWith(`${from}/`)) v = to + v.slice(from.length);
      env[name] = v;
    }
    assert.deepEqual(problems, []);
    const result = loadConfig(env);
    assert.ok(result.ok, `relaybox rejects the manifests' configuration:\n${result.ok ? '' : result.errors.join('\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Sized by hand from BENCHMARKS.md; measured figures belong to `npm run bench`, not to a unit test.
test('the container has memory and CPU requests, and a memory limit no lower than its request', () => {
  const sts = loadDocs().find((d) => d.doc.kind === 'StatefulSet')!.doc;
  const resources = sts.spec.template.spec.containers.find((c: Obj) => c.name === 'relaybox').resources;
  const mebibytes = (q: string) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(q);
    assert.ok(m, `memory quantity ${q}: write it in Mi or Gi`);
    return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
  };
  assert.ok(resources?.requests?.cpu, 'no CPU request');
  assert.ok(mebibytes(resources.limits.memory) >= mebibytes(resources.requests.memory), `limits.memory ${resources.limits.memory} < requests.memory ${resources.requests.memory}`);
});

// ------------------------------------------------------- each check can fail ----

function mutated(change: (docs: Doc[]) => void): Doc[] {
  const docs = structuredClone(loadDocs());
  change(docs);
  return docs;
}
const statefulSet = (docs: Doc[]) => docs.find((d) => d.doc.kind === 'StatefulSet')!.doc;
const mainContainer = (docs: Doc[]) => statefulSet(docs).spec.template.spec.containers[0];
const configMap = (docs: Doc[]) => docs.find((d) => d.doc.kind === 'ConfigMap')!.doc;

const MUTATIONS: Array<[string, (docs: Doc[]) => void, string]> = [
  ['liveness on another path', (d) => void (mainContainer(d).livenessProbe.httpGet.path = '/healthz'), 'livenessProbe path'],
  ['readiness on /health', (d) => void (mainContainer(d).readinessProbe.httpGet.path = ROUTES.health), 'readinessProbe path'],
  ['startup probe missing', (d) => void delete mainContainer(d).startupProbe, 'startupProbe is missing'],
  ['probe on a numeric wrong port', (d) => void (mainContainer(d).livenessProbe.httpGet.port = 8081), 'livenessProbe port'],
  ['probe on a named mail port', (d) => void (mainContainer(d).readinessProbe.httpGet.port = 'smtp'), 'readinessProbe port'],
  ['PORT_HTTP changed in the ConfigMap only', (d) => void (configMap(d).data.PORT_HTTP = '9090'), 'PORT_HTTP is 9090'],
  ['a container port missing', (d) => void mainContainer(d).ports.splice(0, 1), 'declares no containerPort'],
  ['an extra container port', (d) => void mainContainer(d).ports.push({ name: 'pop3', containerPort: 110 }), 'none of the PORT_* values'],
  ['Service port not published', (d) => void d.find((x) => x.doc.metadata.name === 'relaybox' && x.doc.kind === 'Service')!.doc.spec.ports.pop(), 'Service relaybox publishes'],
  ['Service with SNAT', (d) => void (d.find((x) => x.doc.metadata.name === 'relaybox' && x.doc.kind === 'Service')!.doc.spec.externalTrafficPolicy = 'Cluster'), 'externalTrafficPolicy'],
  ['Service selects nothing', (d) => void (d.find((x) => x.doc.metadata.name === 'relaybox' && x.doc.kind === 'Service')!.doc.spec.selector = { app: 'other' }), 'does not select'],
  ['a capability added', (d) => void mainContainer(d).securityContext.capabilities.add.push('NET_ADMIN'), 'capabilities.add'],
  ['a capability missing', (d) => void mainContainer(d).securityContext.capabilities.add.pop(), 'capabilities.add'],
  ['drop ALL missing', (d) => void (mainContainer(d).securityContext.capabilities.drop = []), 'capabilities.drop'],
  ['privilege escalation', (d) => void (mainContainer(d).securityContext.allowPrivilegeEscalation = true), 'allowPrivilegeEscalation'],
  ['writable root', (d) => void delete mainContainer(d).securityContext.readOnlyRootFilesystem, 'readOnlyRootFilesystem'],
  ['state on another path', (d) => void (mainContainer(d).volumeMounts[0].mountPath = '/data'), "VOLUME /var/lib/relaybox"],
  ['STATE_DIR moved', (d) => void (configMap(d).data.STATE_DIR = '/srv/relaybox'), 'STATE_DIR /srv/relaybox'],
  ['no emptyDir for /tmp', (d) => void (mainContainer(d).volumeMounts = mainContainer(d).volumeMounts.filter((m: Obj) => m.mountPath !== '/tmp')), 'tmpfs /tmp'],
  ['grace period at the deadline', (d) => void (statefulSet(d).spec.template.spec.terminationGracePeriodSeconds = 9), 'terminationGracePeriodSeconds'],
  ['unhandled stop signal', (d) => void (mainContainer(d).lifecycle = { stopSignal: 'SIGQUIT' }), 'stop signal SIGQUIT'],
  ['unknown variable', (d) => void (configMap(d).data.MAIL_HOST = 'x'), 'MAIL_HOST (ConfigMap'],
  ['a *_PORT variable', (d) => void mainContainer(d).env.push({ name: 'SMTP_PORT', value: '25' }), 'ends in _PORT'],
  ['a secret as a plain value', (d) => void (configMap(d).data.RELAY_PASSWORD = 'x'), 'RELAY_PASSWORD (ConfigMap relaybox-config) is a secret'],
  ['*_FILE not in the Secret', (d) => void (mainContainer(d).env[0].value = '/run/secrets/relaybox/nope'), 'is not a key of a Secret'],
  ['a real-looking secret', (d) => void (d.find((x) => x.doc.kind === 'Secret')!.doc.stringData['relay-password'] = 'hunter2'), 'not a REPLACE_WITH_ placeholder'],
  ['two replicas', (d) => void (statefulSet(d).spec.replicas = 2), 'replicas is 2'],
];

for (const [name, change, expected] of MUTATIONS) {
  test(`the consistency check fails for: ${name}`, () => {
    const problems = consistencyProblems(mutated(change), truth());
    assert.ok(problems.some((p) => p.includes(expected)), `expected a problem containing "${expected}", got:\n${problems.join('\n')}`);
  });
}

test('the consistency check fails when a source of truth changes', () => {
  const docs = loadDocs();
  const base = truth();
  const cases: Array<[string, Truth, string]> = [
    ['ROUTES.ready moved', { ...base, routes: { ...base.routes, ready: '/readyz' } }, 'readinessProbe path'],
    ['compose adds a capability', { ...base, compose: { ...base.compose, capAdd: [...base.compose.capAdd, 'NET_RAW'] } }, 'capabilities.add'],
    ['Dockerfile VOLUME moved', { ...base, dockerfile: { ...base.dockerfile, volumes: ['/data'] } }, 'VOLUME /data'],
    ['longer shutdown deadline', { ...base, shutdownDeadlineMs: 30_000 }, 'terminationGracePeriodSeconds'],
    ['Dockerfile STOPSIGNAL changed', { ...base, dockerfile: { ...base.dockerfile, stopSignal: 'SIGQUIT' } }, 'stop signal SIGQUIT'],
    [
      'a PORT_* default changed',
      { ...base, env: new Map([...base.env, ['PORT_SUBMISSION', { default: '2587' }]]) },
      'PORT_SUBMISSION is 2587',
    ],
  ];
  for (const [name, changed, expected] of cases) {
    const problems = consistencyProblems(docs, changed);
    assert.ok(problems.some((p) => p.includes(expected)), `${name}: expected "${expected}", got:\n${problems.join('\n')}`);
  }
});

test('the schema check fails for invalid manifests', () => {
  const cases: Array<[string, (docs: Doc[]) => void, RegExp]> = [
    ['no containers', (d) => void delete statefulSet(d).spec.template.spec.containers, /StatefulSet/],
    ['a port as text', (d) => void (mainContainer(d).ports[0].containerPort = 'twenty-five'), /containerPort/],
    ['a probe period as text', (d) => void (mainContainer(d).livenessProbe.periodSeconds = '10s'), /periodSeconds/],
    ['an unknown kind', (d) => void (d[0]!.doc.kind = 'Deploymnet'), /no schema/],
  ];
  for (const [name, change, expected] of cases) {
    const problems = schemaProblems(mutated(change));
    assert.ok(problems.some((p) => expected.test(p)), `${name}: expected ${expected}, got:\n${problems.join('\n')}`);
  }
});

test('the unknown-field check fails for a misspelt field (which the JSON schemas let through)', () => {
  const docs = mutated((d) => {
    const c = mainContainer(d);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
  });
  assert.deepEqual(schemaProblems(docs), [], 'the JSON schemas alone accept unknown fields');
  const problems = unknownFieldProblems(docs);
  assert.ok(problems.some((p) => p.includes('statefulset.yaml') && p.includes('readinesProbe')), problems.join('\n'));
});

test('the placeholder check: the Secret is not applied with real-looking values', () => {
  const docs = mutated((d) => {
    d.find((x) => x.doc.kind === 'Secret')!.doc.stringData.users = 'alice@example.com:{SHA512-CRYPT}$6$salt$hash\n';
  });
  assert.ok(consistencyProblems(docs, truth()).some((p) => p.includes('key users')));
});

// The manifests for relaybox as replicas (docker/k8s/replicas, and the bring-your-own Redis example):
// valid against the Kubernetes API schemas (kubernetes-models, unknown fields included), and
// consistent with the image's sources of truth: each StatefulSet's ROLE and the listeners that role
// serves (src/listeners.ts), probe paths (src/http/routes.ts), variables (the env schema), the grace
// period against the shutdown deadline plus DRAIN_SECONDS and HANDOFF_SECONDS (src/appliance/appliance.ts and the
// schema's defaults), NetworkPolicy ports against the listener ports, capabilities (compose.yaml).
// Each check is shown able to fail at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import ts from 'typescript';
import { envReference, loadConfig } from '../../src/config/load.ts';
import { ROUTES } from '../../src/http/routes.ts';
import { LISTENERS } from '../../src/listeners.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'docker/k8s/replicas');
type Obj = Record<string, any>;
interface Doc { file: string; doc: Obj }

function loadDocs(version: '1.1' | '1.2' = '1.2'): Doc[] {
  const files = [...readdirSync(DIR).filter((f) => f.endsWith('.yaml')), ...readdirSync(join(DIR, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => `examples/${f}`)];
  return files.sort().flatMap((file) =>
    parseAllDocuments(readFileSync(join(DIR, file), 'utf8'), { version }).flatMap((parsed) => {
      if (parsed.errors.length > 0) throw new Error(`${file}: ${parsed.errors.map(String).join('; ')}`);
      const doc = parsed.toJS() as Obj | null;
      return doc ? [{ file, doc }] : [];
    }),
  );
}

const MODELS: Record<string, [string, string]> = {
  'apps/v1/StatefulSet': ['kubernetes-models/apps/v1/StatefulSet', 'StatefulSet'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1/Deployment', 'Deployment'],
  'v1/Service': ['kubernetes-models/v1/Service', 'Service'],
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'ConfigMap'],
  'v1/Secret': ['kubernetes-models/v1/Secret', 'Secret'],
  'policy/v1/PodDisruptionBudget': ['kubernetes-models/policy/v1/PodDisruptionBudget', 'PodDisruptionBudget'],
  'autoscaling/v2/HorizontalPodAutoscaler': ['kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'HorizontalPodAutoscaler'],
  'networking.k8s.io/v1/NetworkPolicy': ['kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'NetworkPolicy'],
};

async function schemaProblems(docs: Doc[]): Promise<string[]> {
  const problems: string[] = [];
  for (const { file, doc } of docs) {
    const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
    if (!entry) {
      problems.push(`${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    const Model = (await import(entry[0]))[entry[1]] as new (data: unknown) => { validate(): void };
    try {
      new Model(structuredClone(doc)).validate();
    } catch (error) {
      problems.push(`${file} (${doc.kind} ${doc.metadata?.name}): ${(error as Error).message}`);
    }
  }
  return problems;
}

/** Excess-property checks through kubernetes-models' interfaces: a misspelt field fails (the JSON schemas let it through). */
function unknownFieldProblems(docs: Doc[]): string[] {
  const virtual = join(ROOT, 'test/unit/__k8s_replicas__.ts');
  const kinds = [...new Set(docs.map((d) => `${d.doc.apiVersion}/${d.doc.kind}`))].filter((k) => MODELS[k]);
  const source = [...kinds.map((k) => `import type { I${MODELS[k]![1]} } from '${MODELS[k]![0]}';`), ...docs.map(({ doc }, i) => (MODELS[`${doc.apiVersion}/${doc.kind}`] ? `export const m${i}: I${MODELS[`${doc.apiVersion}/${doc.kind}`]![1]} = ${JSON.stringify(doc)};` : ''))].join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) => (name === virtual ? ts.createSourceFile(name, source, language) : getSourceFile.call(host, name, language, ...rest));
  host.fileExists = (name) => name === virtual || fileExists.call(host, name);
  host.readFile = (name) => (name === virtual ? source : readFile.call(host, name));
  return ts.getPreEmitDiagnostics(ts.createProgram([virtual], options, host)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
}

// ----------------------------------------------------------- the sources of truth ----

const ENV = new Map(envReference().map((v) => [v.name, v]));
const DEADLINE_MS = Number(/SHUTDOWN_DEADLINE_MS\s*=\s*([\d_]+)/.exec(readFileSync(join(ROOT, 'src/appliance/appliance.ts'), 'utf8'))![1]!.replaceAll('_', ''));
const COMPOSE = (parse(readFileSync(join(ROOT, 'compose.yaml'), 'utf8')) as Obj).services.relaybox as Obj;
const ROLES = { 'relaybox-relay': 'relay', 'relaybox-mailbox': 'mailbox' } as const;

const find = (docs: Doc[], kind: string, name?: string) => docs.find((d) => d.doc.kind === kind && (name === undefined || d.doc.metadata?.name === name))?.doc;
const sorted = (list: Iterable<string | number>) => JSON.stringify([...list].map(String).sort());
const selects = (selector: Obj | undefined, labels: Obj) => selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The container's environment: its ConfigMaps (envFrom) and env entries. */
function containerEnv(docs: Doc[], container: Obj, problems: string[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const source of container.envFrom ?? []) {
    const map = find(docs, 'ConfigMap', source.configMapRef?.name);
    if (!map) problems.push(`envFrom names ConfigMap ${source.configMapRef?.name ?? JSON.stringify(source)}, which is not in docker/k8s/replicas`);
    for (const [name, value] of Object.entries(map?.data ?? {})) env.set(name, String(value));
  }
  for (const entry of container.env ?? []) env.set(entry.name, entry.value);
  return env;
}

function statefulSetProblems(docs: Doc[], name: keyof typeof ROLES): string[] {
  const problems: string[] = [];
  const sts = find(docs, 'StatefulSet', name);
  if (!sts) return [`no StatefulSet ${name}`];
  const pod = sts.spec.template.spec as Obj;
  const labels = sts.spec.template.metadata.labels as Obj;
  const container = (pod.containers as Obj[]).find((c) => c.name === 'relaybox')!;
  const env = containerEnv(docs, container, problems);
  const value = (variable: string) => env.get(variable) ?? ENV.get(variable)?.default;
  const role = ROLES[name];
  if (value('ROLE') !== role) problems.push(`${name}: ROLE is ${value('ROLE')}, expected ${role}`);
  for (const variable of env.keys()) {
    if (!ENV.has(variable)) problems.push(`${name}: ${variable} is not a variable relaybox reads`);
    if (ENV.get(variable)?.secret) problems.push(`${name}: ${variable} is a secret: pass it as ${variable}_FILE`);
  }
  if (!selects(sts.spec.selector.matchLabels, labels)) problems.push(`${name}: the selector does not match the pod labels`);

  // Ports: exactly the listeners of the role, under their own names.
  const listeners = LISTENERS.filter((l) => (l.inRoles as readonly string[]).includes(role)).map((l) => [l.name, Number(value(l.variable))] as const).filter(([, port]) => port > 0);
  const ports = new Map<string, number>((container.ports ?? []).map((p: Obj) => [p.name, p.containerPort]));
  if (sorted(listeners.map(([n, p]) => `${n}=${p}`)) !== sorted([...ports].map(([n, p]) => `${n}=${p}`))) problems.push(`${name}: container ports ${sorted([...ports].map(([n, p]) => `${n}=${p}`))} are not the ${role} listeners ${sorted(listeners.map(([n, p]) => `${n}=${p}`))}`);
  for (const [probe, path] of [['livenessProbe', ROUTES.health], ['readinessProbe', ROUTES.ready], ['startupProbe', ROUTES.ready]] as const) {
    const get = container[probe]?.httpGet;
    if (get?.path !== path || (ports.get(get.port) ?? get.port) !== Number(value('PORT_HTTP'))) problems.push(`${name}: ${probe} is not ${path} on PORT_HTTP`);
  }

  // Secrets as files: *_FILE a key of a mounted Secret, DKIM_KEY_DIR a mounted Secret.
  const volumes = new Map<string, Obj>((pod.volumes ?? []).map((v: Obj) => [v.name, v]));
  const mountOf = (path: string) => ((container.volumeMounts ?? []) as Obj[]).filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  for (const [variable, path] of env) {
    if (!variable.endsWith('_FILE') && variable !== 'DKIM_KEY_DIR') continue;
    const mount = mountOf(path);
    const secretName = mount && volumes.get(mount.name)?.secret?.secretName;
    const secret = secretName && find(docs, 'Secret', secretName);
    const key = mount && path.slice(mount.mountPath.length + 1);
    if (!secret || (variable !== 'DKIM_KEY_DIR' && !(key in (secret.stringData ?? {})))) problems.push(`${name}: ${variable}=${path} is not in a mounted Secret`);
  }
  const claims = (sts.spec.volumeClaimTemplates ?? []).map((c: Obj) => c.metadata.name);
  if (!claims.includes(mountOf(value('STATE_DIR')!)?.name)) problems.push(`${name}: STATE_DIR is not on a volumeClaimTemplate`);

  // Security: compose.yaml's capabilities and options.
  const sc = container.securityContext ?? {};
  if (sorted(sc.capabilities?.add ?? []) !== sorted(COMPOSE.cap_add) || sorted(sc.capabilities?.drop ?? []) !== sorted(COMPOSE.cap_drop)) problems.push(`${name}: capabilities differ from compose.yaml`);
  if (sc.allowPrivilegeEscalation !== false || sc.readOnlyRootFilesystem !== true) problems.push(`${name}: privilege escalation allowed or root writable`);

  // Stopping: a relay drains and hands off before the supervisor's own deadline runs out.
  const needs = DEADLINE_MS / 1000 + (role === 'relay' ? Number(value('DRAIN_SECONDS')) + Number(value('HANDOFF_SECONDS')) : 0);
  if (!((pod.terminationGracePeriodSeconds ?? 30) > needs)) problems.push(`${name}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} is not above ${needs} s (shutdown deadline${role === 'relay' ? ' + DRAIN_SECONDS + HANDOFF_SECONDS' : ''})`);

  // Replicas, spreading, disruption budget, autoscaling.
  const spread = (pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((t: Obj) => t.podAffinityTerm).concat(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []);
  if (role === 'mailbox' && sts.spec.replicas !== 1) problems.push(`${name}: replicas is ${sts.spec.replicas}, must be 1 (one volume of Maildirs)`);
  if (role === 'relay') {
    if (!(sts.spec.replicas >= 2)) problems.push(`${name}: replicas is ${sts.spec.replicas}, at least 2 (no single point of failure)`);
    if (!spread.some((t: Obj) => t.topologyKey === 'kubernetes.io/hostname' && selects(t.labelSelector?.matchLabels, labels))) problems.push(`${name}: no pod anti-affinity across nodes`);
    const pdb = docs.find((d) => d.doc.kind === 'PodDisruptionBudget' && selects(d.doc.spec.selector?.matchLabels, labels))?.doc;
    if (!pdb || !(pdb.spec.minAvailable >= 1)) problems.push(`${name}: no PodDisruptionBudget keeping at least one relay`);
    const hpa = docs.find((d) => d.doc.kind === 'HorizontalPodAutoscaler' && d.doc.spec.scaleTargetRef?.name === name)?.doc;
    if (!hpa || hpa.spec.scaleTargetRef.kind !== 'StatefulSet' || !(hpa.spec.minReplicas >= 2) || !(hpa.spec.metrics ?? []).some((m: Obj) => m.resource?.name === 'cpu') || !container.resources?.requests?.cpu) problems.push(`${name}: no HorizontalPodAutoscaler on CPU with at least 2 relays (and a CPU request)`);
  }

  // Services: the public one publishes the client ports of the role and keeps client addresses.
  const services = docs.filter((d) => d.doc.kind === 'Service' && selects(d.doc.spec.selector, labels)).map((d) => d.doc);
  const clientPorts = listeners.filter(([n]) => ['smtp', 'submission', 'submissions', 'imap', 'imaps'].includes(n)).map(([, p]) => p);
  const publicService = services.find((s) => s.spec.type === 'LoadBalancer');
  if (!publicService || sorted(publicService.spec.ports.map((p: Obj) => p.port)) !== sorted(clientPorts) || publicService.spec.externalTrafficPolicy !== 'Local') problems.push(`${name}: no LoadBalancer publishing ${sorted(clientPorts)} with externalTrafficPolicy Local`);
  const governing = services.find((s) => s.metadata.name === sts.spec.serviceName);
  if (governing?.spec.clusterIP !== 'None') problems.push(`${name}: serviceName ${sts.spec.serviceName} is not a headless Service selecting it`);
  if (role === 'relay') {
    const [peersHost, peersPort] = String(value('HANDOFF_PEERS')).split(':');
    if (peersHost !== sts.spec.serviceName || Number(peersPort) !== Number(value('PORT_HANDOFF')) || !governing?.spec.ports.some((p: Obj) => p.port === Number(peersPort))) problems.push(`${name}: HANDOFF_PEERS ${value('HANDOFF_PEERS')} is not the headless Service on PORT_HANDOFF`);
  }

  // NetworkPolicy: admits exactly the role's listener ports; LMTP and handoff only from relay pods.
  const policy = docs.find((d) => d.doc.kind === 'NetworkPolicy' && selects(d.doc.spec.podSelector?.matchLabels, labels))?.doc;
  const rules = (policy?.spec.ingress ?? []) as Obj[];
  const admitted = rules.flatMap((r) => (r.ports ?? []).map((p: Obj) => p.port));
  if (!policy || sorted(new Set(admitted)) !== sorted(listeners.map(([, p]) => p))) problems.push(`${name}: NetworkPolicy ports ${sorted(new Set(admitted))} are not the listener ports ${sorted(listeners.map(([, p]) => p))}`);
  const relayLabels = find(docs, 'StatefulSet', 'relaybox-relay')?.spec.template.metadata.labels ?? {};
  for (const internal of listeners.filter(([n]) => n === 'lmtp' || n === 'handoff')) {
    for (const rule of rules.filter((r) => (r.ports ?? []).some((p: Obj) => p.port === internal[1]))) {
      const onlyRelays = (rule.from ?? []).length > 0 && rule.from.every((f: Obj) => !f.namespaceSelector && !f.ipBlock && sorted(Object.entries(f.podSelector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)) === sorted(Object.entries(relayLabels).map(([k, v]) => `${k}=${v}`)));
      if (!onlyRelays) problems.push(`${name}: the ${internal[0]} port ${internal[1]} is open to more than the relay pods`);
    }
  }
  if (role === 'relay') {
    const lmtpService = find(docs, 'Service', String(value('MAILBOX_LMTP_HOST')).split(':')[0]);
    const mailbox = find(docs, 'StatefulSet', 'relaybox-mailbox');
    const lmtpPort = Number(String(value('MAILBOX_LMTP_HOST')).split(':')[1] ?? 24);
    if (!lmtpService || !selects(lmtpService.spec.selector, mailbox?.spec.template.metadata.labels ?? {}) || !lmtpService.spec.ports.some((p: Obj) => p.port === lmtpPort && p.targetPort === 'lmtp')) problems.push(`${name}: MAILBOX_LMTP_HOST ${value('MAILBOX_LMTP_HOST')} is not a Service on the mailbox's lmtp port`);
  }
  return problems;
}

const consistency = (docs: Doc[]) => [...statefulSetProblems(docs, 'relaybox-relay'), ...statefulSetProblems(docs, 'relaybox-mailbox')];

// ------------------------------------------------------------------------ tests ----

test('docker/k8s/replicas: relay and mailbox StatefulSets, Services, PDB, HPA, NetworkPolicies, ConfigMaps, Secrets, a Redis example', () => {
  const kinds = new Set(loadDocs().map((d) => d.doc.kind));
  for (const kind of ['StatefulSet', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'NetworkPolicy', 'ConfigMap', 'Secret', 'Deployment']) assert.ok(kinds.has(kind), kind);
  assert.deepEqual(loadDocs('1.1'), loadDocs('1.2'), 'kubectl (YAML 1.1) reads them as this test does');
});

test('every manifest validates against the Kubernetes API schemas, with no unknown field', async () => {
  assert.deepEqual(await schemaProblems(loadDocs()), []);
  assert.deepEqual(unknownFieldProblems(loadDocs()), []);
});

test('the manifests match the image: roles and their listeners, probes, variables, secrets, grace period, spreading, Services, NetworkPolicies', () => {
  assert.deepEqual(consistency(loadDocs()), []);
});

test('every Secret holds placeholders only', () => {
  for (const { doc } of loadDocs().filter((d) => d.doc.kind === 'Secret')) {
    assert.equal(doc.data, undefined);
    for (const [key, text] of Object.entries(doc.stringData ?? {})) {
      for (const line of String(text).split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))) assert.match(line, /REPLACE_WITH_/, `${doc.metadata.name}/${key}`);
    }
  }
});

test('relaybox accepts what each StatefulSet gives it, once the Secrets hold real values', () => {
  const docs = loadDocs();
  const dir = mkdtempSync(join(tmpdir(), 'relaybox-k8s-replicas-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=mail.example.com', '-keyout', `${dir}/key`, '-out', `${dir}/crt`], { stdio: 'ignore' });
    const real: Record<string, string> = {
      users: 'alice@example.com:{SHA512-CRYPT}$6$abcdefgh$0123456789\n',
      'handoff-password': 'a-handoff-password-of-some-length',
      'redis-url': 'redis://relaybox-redis:6379/0',
      'tls.crt': readFileSync(`${dir}/crt`, 'utf8'),
      'tls.key': readFileSync(`${dir}/key`, 'utf8'),
      'example.com.relaybox.key': execFileSync('openssl', ['genrsa', '2048'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
    };
    for (const name of Object.keys(ROLES)) {
      const sts = find(docs, 'StatefulSet', name)!;
      const container = sts.spec.template.spec.containers[0];
      const rebase = new Map<string, string>();
      for (const mount of container.volumeMounts as Obj[]) {
        const secretName = sts.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name)?.secret?.secretName;
        const secret = secretName && find(docs, 'Secret', secretName);
        if (!secret) continue;
        const target = join(dir, `${name}-${mount.name}`);
        mkdirSync(target);
        for (const [key, text] of Object.entries(secret.stringData ?? {})) writeFileSync(join(target, key), real[key] ?? String(text));
        rebase.set(mount.mountPath, target);
      }
      const env: Record<string, string> = {};
      for (const [variable, value] of containerEnv(docs, container, [])) env[variable] = [...rebase].reduce((v, [from, to]) => (v === from || v.startsWith(`${from}/`) ? to + v.slice(from.length) : v), value);
      const result = loadConfig(env);
      assert.ok(result.ok, `${name}:\n${result.ok ? '' : result.errors.join('\n')}`);
      assert.equal(result.config.role, ROLES[name as keyof typeof ROLES]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------- each check can fail ----

const relay = (docs: Doc[]) => find(docs, 'StatefulSet', 'relaybox-relay')!;
const relayContainer = (docs: Doc[]) => relay(docs).spec.template.spec.containers[0];
const MUTATIONS: Array<[string, (docs: Doc[]) => void, string]> = [
  ['ROLE missing', (d) => void delete find(d, 'ConfigMap', 'relaybox-relay')!.data.ROLE, 'ROLE is all'],
  ['the handoff port not declared', (d) => void relayContainer(d).ports.splice(3, 1), 'are not the relay listeners'],
  ['IMAP declared on a relay', (d) => void relayContainer(d).ports.push({ name: 'imap', containerPort: 143 }), 'are not the relay listeners'],
  ['grace period below drain + handoff', (d) => void (relay(d).spec.template.spec.terminationGracePeriodSeconds = 40), 'not above 44 s'],
  ['DRAIN_SECONDS raised past the grace period', (d) => void (find(d, 'ConfigMap', 'relaybox-relay')!.data.DRAIN_SECONDS = '60'), 'terminationGracePeriodSeconds 60'],
  ['one relay', (d) => void (relay(d).spec.replicas = 1), 'at least 2'],
  ['no anti-affinity', (d) => void delete relay(d).spec.template.spec.affinity, 'anti-affinity'],
  ['PDB allowing zero', (d) => void (find(d, 'PodDisruptionBudget')!.spec.minAvailable = 0), 'PodDisruptionBudget'],
  ['HPA down to one', (d) => void (find(d, 'HorizontalPodAutoscaler')!.spec.minReplicas = 1), 'HorizontalPodAutoscaler'],
  ['two mailbox replicas', (d) => void (find(d, 'StatefulSet', 'relaybox-mailbox')!.spec.replicas = 2), 'must be 1'],
  ['LMTP open to every pod', (d) => void (find(d, 'NetworkPolicy', 'relaybox-mailbox')!.spec.ingress[1].from = [{ podSelector: {} }]), 'lmtp port 24 is open'],
  ['handoff open to the world', (d) => void delete find(d, 'NetworkPolicy', 'relaybox-relay')!.spec.ingress[1].from, 'handoff port 10025 is open'],
  ['NetworkPolicy without the submission port', (d) => void find(d, 'NetworkPolicy', 'relaybox-relay')!.spec.ingress[0].ports.pop(), 'NetworkPolicy ports'],
  ['MAILBOX_LMTP_HOST elsewhere', (d) => void (find(d, 'ConfigMap', 'relaybox-relay')!.data.MAILBOX_LMTP_HOST = 'mailbox:24'), 'MAILBOX_LMTP_HOST'],
  ['HANDOFF_PEERS not the headless Service', (d) => void (find(d, 'ConfigMap', 'relaybox-relay')!.data.HANDOFF_PEERS = 'relaybox-relay:10025'), 'HANDOFF_PEERS'],
  ['the Redis URL as a plain value', (d) => void (find(d, 'ConfigMap', 'relaybox-shared')!.data.REDIS_URL = 'redis://x'), 'REDIS_URL is a secret'],
  ['DKIM_KEY_DIR not a Secret', (d) => void (relayContainer(d).env.find((e: Obj) => e.name === 'DKIM_KEY_DIR').value = '/var/lib/dkim'), 'DKIM_KEY_DIR=/var/lib/dkim'],
  ['the relay Service with SNAT', (d) => void (find(d, 'Service', 'relaybox-relay')!.spec.externalTrafficPolicy = 'Cluster'), 'externalTrafficPolicy Local'],
  ['readiness on /health', (d) => void (relayContainer(d).readinessProbe.httpGet.path = ROUTES.health), 'readinessProbe'],
];

for (const [name, change, expected] of MUTATIONS) {
  test(`the consistency check fails for: ${name}`, () => {
    const docs = structuredClone(loadDocs());
    change(docs);
    const problems = consistency(docs);
    assert.ok(problems.some((p) => p.includes(expected)), `expected "${expected}", got:\n${problems.join('\n')}`);
  });
}

test('the schema checks fail for a bad field type and a misspelt field', async () => {
  const docs = structuredClone(loadDocs());
  find(docs, 'HorizontalPodAutoscaler')!.spec.minReplicas = 'two';
  assert.ok((await schemaProblems(docs)).some((p) => /minReplicas/.test(p)));
  const misspelt = structuredClone(loadDocs());
  find(misspelt, 'PodDisruptionBudget')!.spec.minAvaliable = 1;
  assert.ok(unknownFieldProblems(misspelt).some((p) => /minAvaliable/.test(p)));
});

// The shipped dashboard and alert rules (docker/monitoring) against the metrics the code registers,
// `promtool check rules` and `promtool test rules` (Debian's prometheus package), and their
// Kubernetes forms (docker/k8s/monitoring: a PrometheusRule and the dashboard as a ConfigMap)
// validated and kept equal to the sources. RELAYBOX_WRITE_MONITORING=1 rewrites the Kubernetes forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Metrics } from '../../src/metrics/metrics.ts';
import { ROOT } from '../helpers/instance.ts';

const MONITORING = join(ROOT, 'docker/monitoring');
const K8S = join(ROOT, 'docker/k8s/monitoring');
const alerts = () => parse(readFileSync(join(MONITORING, 'alerts.yaml'), 'utf8')) as { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string }> }> };
const dashboard = () => JSON.parse(readFileSync(join(MONITORING, 'dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };

const HEADER = '# Generated from docker/monitoring by `RELAYBOX_WRITE_MONITORING=1 node --test test/unit/monitoring.test.ts`; edit the sources there.\n';

function k8sForms(): Record<string, string> {
  const rule = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'relaybox', labels: { 'app.kubernetes.io/name': 'relaybox', role: 'alert-rules' } }, spec: alerts() };
  const map = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'relaybox-dashboard', labels: { 'app.kubernetes.io/name': 'relaybox', grafana_dashboard: '1' } }, data: { 'relaybox.json': readFileSync(join(MONITORING, 'dashboard.json'), 'utf8') } };
  return { 'prometheusrule.yaml': HEADER + stringify(rule, { lineWidth: 0 }), 'dashboard-configmap.yaml': HEADER + stringify(map, { lineWidth: 0 }) };
}

if (process.env.RELAYBOX_WRITE_MONITORING === '1') for (const [file, text] of Object.entries(k8sForms())) writeFileSync(join(K8S, file), text);

/** Every metric the supervisor registers. */
function registered(): Set<string> {
  const metrics = new Metrics({ readiness: () => ({ ready: true, checks: {}, daemons: {}, failing: [], degraded: [] }), bansActive: () => 0, queueDir: '/nonexistent', certFile: () => '/nonexistent' });
  return new Set(metrics.registry.getMetricsAsArray().map((metric) => (metric as unknown as { name: string }).name));
}

const used = (exprs: string[]) => [...new Set(exprs.flatMap((expr) => [...expr.matchAll(/\brelaybox_[a-z_]+\b/g)].map((m) => m[0])))];
const unknownMetrics = (exprs: string[], known: Set<string>) => used(exprs).filter((name) => !known.has(name));

test('every metric the alerts and the dashboard use is one the supervisor registers', () => {
  const known = registered();
  assert.ok(known.has('relaybox_queue_oldest_message_age_seconds') && known.has('relaybox_admin_actions_total'));
  assert.deepEqual(unknownMetrics(alerts().groups.flatMap((g) => g.rules.map((r) => r.expr)), known), []);
  assert.deepEqual(unknownMetrics(dashboard().panels.flatMap((p) => p.targets.map((t) => t.expr)), known), []);
  // The check can fail: a misspelt metric is caught.
  assert.deepEqual(unknownMetrics(['rate(relaybox_deliveries_defered_total[5m])'], known), ['relaybox_deliveries_defered_total']);
});

test('the dashboard shows queue by state, deliveries, deferrals by reason, rejections, limits, suspensions, bans, restarts, readiness, certificate expiry', () => {
  const exprs = dashboard().panels.flatMap((p) => p.targets.map((t) => t.expr));
  const wanted = ['relaybox_queue_messages', 'relaybox_deliveries_total', 'relaybox_deliveries_deferred_total', 'relaybox_smtp_rejections_total', 'relaybox_rate_limited_total', 'relaybox_users_suspended', 'relaybox_bans_active', 'relaybox_daemon_restarts', 'relaybox_ready', 'relaybox_tls_certificate_expiry_timestamp_seconds', 'relaybox_queue_oldest_message_age_seconds'];
  assert.deepEqual(wanted.filter((name) => !used(exprs).includes(name)), []);
  assert.ok(exprs.some((e) => /sum by \(queue\) \(relaybox_queue_messages/.test(e)) && exprs.some((e) => /sum by \(reason\) \(rate\(relaybox_deliveries_deferred_total/.test(e)));
});

test('the alerts cover a growing queue, deferrals by reason, a suspended account, an expiring certificate, restarts, not ready', () => {
  const names = alerts().groups.flatMap((g) => g.rules.map((r) => r.alert));
  for (const name of ['RelayboxQueueGrowing', 'RelayboxDeferrals', 'RelayboxUserSuspended', 'RelayboxCertificateExpiring', 'RelayboxDaemonRestarting', 'RelayboxNotReady']) assert.ok(names.includes(name), name);
});

test('promtool check rules and promtool test rules pass', () => {
  execFileSync('promtool', ['check', 'rules', join(MONITORING, 'alerts.yaml')], { stdio: 'pipe' });
  const tested = spawnSync('promtool', ['test', 'rules', join(MONITORING, 'alerts.test.yaml')], { encoding: 'utf8' });
  assert.equal(tested.status, 0, tested.stdout + tested.stderr);
});

test('promtool test rules fails when an alert is broken (the tests can fail)', () => {
  const dir = mkdtempSync('/tmp/rbt-promtool-');
  try {
    const broken = readFileSync(join(MONITORING, 'alerts.yaml'), 'utf8').replace('expr: relaybox_users_suspended > 0', 'expr: relaybox_users_suspended > 1');
    writeFileSync(join(dir, 'alerts.yaml'), broken);
    writeFileSync(join(dir, 'alerts.test.yaml'), readFileSync(join(MONITORING, 'alerts.test.yaml'), 'utf8'));
    const tested = spawnSync('promtool', ['test', 'rules', join(dir, 'alerts.test.yaml')], { encoding: 'utf8' });
    assert.notEqual(tested.status, 0);
    assert.match(tested.stdout + tested.stderr, /RelayboxUserSuspended/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docker/k8s/monitoring: a valid PrometheusRule and dashboard ConfigMap, equal to the sources', () => {
  for (const [file, expected] of Object.entries(k8sForms())) assert.equal(readFileSync(join(K8S, file), 'utf8'), expected, `${file} is stale: RELAYBOX_WRITE_MONITORING=1 node --test test/unit/monitoring.test.ts`);
  const rule = parse(readFileSync(join(K8S, 'prometheusrule.yaml'), 'utf8')) as { apiVersion: string; kind: string; metadata: { name: string }; spec: unknown };
  assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(rule.kind, 'PrometheusRule');
  const dir = mkdtempSync('/tmp/rbt-promtool-');
  try {
    writeFileSync(join(dir, 'spec.yaml'), stringify(rule.spec));
    execFileSync('promtool', ['check', 'rules', join(dir, 'spec.yaml')], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const map = parse(readFileSync(join(K8S, 'dashboard-configmap.yaml'), 'utf8'));
  new ConfigMap(map).validate();
  assert.equal(map.metadata.labels.grafana_dashboard, '1', 'the Grafana sidecar picks up ConfigMaps labelled grafana_dashboard=1');
  assert.deepEqual(JSON.parse(map.data['relaybox.json']), dashboard());
});

// deploy/: the Grafana dashboard and the Prometheus alert rules. The rules
// pass `promtool check rules`, and `promtool test rules` fires each alert on
// its condition and not on a healthy agent; the dashboard is JSON Grafana
// loads (panels with ids inside the 24-column grid, the datasource a
// variable), and every query of both names only metrics the agent exports
// (its exporter's own list) and is valid PromQL (promtool checks them as
// recording rules).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { Metrics } from '../../src/supervisor/metrics.js';

/** The metrics the agent exports: the families of the daemon's exporter (src/supervisor/metrics.ts). */
export const EXPORTED_METRICS: readonly string[] = new Metrics(() => [], () => true).registry.getMetricsAsArray().map((m) => m.name);
/** Histograms: queried through their _bucket, _sum and _count series. */
const HISTOGRAMS = new Set(['otus_processing_latency_seconds']);

const root = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const ALERTS = root('deploy/prometheus/alerts.yml');
const DASHBOARD = root('deploy/grafana/otus.json');

const promtoolSkip = spawnSync('sh', ['-c', 'command -v promtool']).status !== 0 ? 'needs promtool (Debian package prometheus; scripts/setup.sh --test installs it)' : false;

const dir = mkdtempSync(join(tmpdir(), 'otus-deploy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** The metric names a PromQL expression reads (ours: otus_*), histogram suffixes taken off. */
function metricsOf(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b(otus_[a-z0-9_]+)\b/g)) {
    const name = m[1]!;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    names.add(HISTOGRAMS.has(base) ? base : name);
  }
  return [...names];
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (): Rule[] => (parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}

describe('deploy: alert rules', () => {
  it('promtool check rules', { skip: promtoolSkip }, () => {
    const r = promtool('check', 'rules', ALERTS);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS: 7 rules found/);
  });

  it('the alerts: kernel drops, ring drops, reporter errors, child restarts, a capture interface down, not ready; each reads exported metrics', () => {
    const rs = rules();
    assert.deepEqual(rs.map((r) => r.alert), ['OtusKernelDrops', 'OtusRingDrops', 'OtusReporterErrors', 'OtusChildRestarts', 'OtusCaptureInterfaceDown', 'OtusNotReady', 'OtusDown']);
    for (const r of rs) {
      for (const m of metricsOf(r.expr)) assert.ok(EXPORTED_METRICS.includes(m), `${r.alert}: ${m} is not an exported metric`);
      assert.ok(r.labels?.severity, `${r.alert}: a severity`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
    }
  });

  it('promtool test rules: each alert fires on its condition, for its instance and task only', { skip: promtoolSkip }, () => {
    // Annotations are checked by `check rules` (their templates); here the expressions, `for` and labels.
    const bare = rules().map(({ annotations: _, ...r }) => r);
    const rulesFile = join(dir, 'alerts-bare.yml');
    writeFileSync(rulesFile, JSON.stringify({ groups: [{ name: 'otus', rules: bare }] }));
    const s = (metric: string, labels: Record<string, string>, values: string): { series: string; values: string } => ({
      series: `${metric}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ')}}`,
      values,
    });
    const A = { instance: 'edge-a:9469', task: 'voip' };
    const B = { instance: 'edge-b:9469', task: 'voip' };
    const alert = (name: string, at: string, expected: Record<string, string>[]) => ({
      eval_time: at,
      alertname: name,
      exp_alerts: expected.map((l) => ({ exp_labels: l })),
    });
    const spec = {
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            // A drops 60 a minute from the start; B counts nothing.
            s('otus_capture_kernel_drops_total', { ...A, process: 'capture 0' }, '0+60x30'),
            s('otus_capture_kernel_drops_total', { ...B, process: 'capture 0' }, '0x30'),
            s('otus_pipeline_channel_drops_total', { ...A, process: 'capture 1' }, '0+5x30'),
            s('otus_pipeline_channel_drops_total', { ...B, process: 'capture 1' }, '7x30'),
            s('otus_reporter_error_drops_total', { ...A, reporter: 'kafka' }, '0 0 0 0 0 10+10x25'),
            s('otus_reporter_error_drops_total', { ...B, reporter: 'kafka' }, '0x30'),
            // A's capture 1 restarts every 2 minutes; B's sender once.
            s('otus_child_restarts_total', { ...A, process: 'capture 1' }, '0+0.5x30'),
            s('otus_child_restarts_total', { ...B, process: 'sender' }, '0 0 0 1x27'),
            // A's capture 0 waits for its interface from minute 3 on; B's for 30 s only (one scrape).
            s('otus_capture_interface_waiting', { ...A, process: 'capture-0' }, '0 0 0 1x27'),
            s('otus_capture_interface_waiting', { ...B, process: 'capture-0' }, '0 0 0 1 0x26'),
            s('otus_ready', { instance: A.instance }, '1 1 1 1 1 0x25'),
            s('otus_ready', { instance: B.instance }, '1x30'),
            s('up', { job: 'otus', instance: A.instance }, '1x30'),
            s('up', { job: 'otus', instance: B.instance }, '1 1 1 1 1 0x25'),
          ],
          alert_rule_test: [
            // Before `for` has passed: pending, not firing.
            alert('OtusKernelDrops', '4m', []),
            alert('OtusKernelDrops', '12m', [{ severity: 'warning', ...A }]),
            alert('OtusRingDrops', '12m', [{ severity: 'warning', ...A }]),
            alert('OtusReporterErrors', '5m', []),
            alert('OtusReporterErrors', '12m', [{ severity: 'critical', ...A, reporter: 'kafka' }]),
            alert('OtusChildRestarts', '20m', [{ severity: 'warning', ...A, process: 'capture 1' }]),
            alert('OtusCaptureInterfaceDown', '3m', []),
            alert('OtusCaptureInterfaceDown', '5m', [{ severity: 'critical', ...A, process: 'capture-0' }]),
            alert('OtusNotReady', '6m', []),
            alert('OtusNotReady', '8m', [{ severity: 'critical', instance: A.instance }]),
            alert('OtusDown', '8m', [{ severity: 'critical', job: 'otus', instance: B.instance }]),
          ],
        },
      ],
    };
    const testFile = join(dir, 'alerts-test.yml');
    writeFileSync(testFile, JSON.stringify(spec));
    const r = promtool('test', 'rules', testFile);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });
});

describe('deploy: Grafana dashboard', () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    templating: { list: { name: string; type: string }[] };
    panels: Panel[];
  };
  const queries = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

  it('loads: a uid, variables for the datasource, node and task, panels with unique ids inside the 24-column grid', () => {
    assert.equal(dash.uid, 'otus-overview');
    assert.ok(dash.schemaVersion >= 36);
    assert.deepEqual(dash.templating.list.map((v) => [v.name, v.type]), [['datasource', 'datasource'], ['instance', 'query'], ['task', 'query']]);
    const ids = dash.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dash.panels) {
      assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: ${JSON.stringify(p.gridPos)}`);
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `${p.title}: a query`);
      assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: the datasource variable`);
    }
  });

  it('shows throughput, drops by layer, latency quantiles, ring and registry fill, restarts', () => {
    const has = (re: RegExp): boolean => queries.some((q) => re.test(q.expr));
    assert.ok(has(/rate\(otus_packets_captured_total/), 'throughput');
    assert.ok(has(/sum by \(task, layer\) \(rate\(otus_packets_dropped_total/), 'drops by layer');
    for (const q of [0.5, 0.9, 0.99]) assert.ok(has(new RegExp(`histogram_quantile\\(${q}, .*otus_processing_latency_seconds_bucket`)), `latency p${q * 100}`);
    assert.ok(has(/otus_pipeline_channel_usage_ratio/), 'ring fill');
    assert.ok(has(/otus_flow_registry_entries.*\/ otus_flow_registry_capacity/), 'registry fill');
    assert.ok(has(/otus_child_restarts_total/), 'restarts');
  });

  it('every query names exported metrics only, and is valid PromQL', { skip: promtoolSkip }, () => {
    for (const q of queries) {
      const names = metricsOf(q.expr);
      assert.ok(names.length > 0, `${q.panel}: ${q.expr} names no otus metric`);
      for (const m of names) assert.ok(EXPORTED_METRICS.includes(m), `${q.panel}: ${m} is not an exported metric`);
    }
    // Grafana's variables as a query would get them, then each query as a recording rule.
    const promql = (e: string): string => e.replace(/\$__rate_interval|\$__range/g, '5m').replace(/\$\{?(instance|task)\}?/g, '.*');
    const file = join(dir, 'dashboard-queries.yml');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `otus_dashboard:query_${i}`, expr: promql(q.expr) })) }] }));
    const r = promtool('check', 'rules', file);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${queries.length} rules found`));
  });
});

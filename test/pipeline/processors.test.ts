// Processors: they see the envelope and labels only (the payload and raw
// frame are unreachable), returning nothing drops the record and counts it
// against that processor, priority orders the chain; the filter and label
// built-ins; parser dispatch and the unmatched policy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DecodedPacket } from '../../src/decode/packet.js';
import { OutputRecord, ProcessorView, type Payload } from '../../src/pipeline/record.js';
import { createRegistry } from '../../src/plugin/builtins.js';
import type { Parser, Processor } from '../../src/plugin/types.js';
import { SAMPLE, runFile, text } from './helpers.js';

const ctx = (where = 'test') => ({ node: { hostname: 'edge-bj-01', ip: '192.0.2.10', dc: 'cn-north', env: '' }, taskId: 't', worker: 0, where });

const SECRET = 'payload-secret-4242';
class SecretPayload implements Payload {
  readonly type = 'secret';
  readonly secret = SECRET;
  writeJson(buf: Uint8Array, off: number): number {
    buf[off] = 48;
    return off + 1;
  }
  binarySize(): number {
    return 0;
  }
  writeBinary(_b: Uint8Array, off: number): number {
    return off;
  }
}

/** Everything reachable from `root` by property access, enumeration, reflection and prototypes. */
function reachable(root: unknown): unknown[] {
  const seen = new Set<unknown>();
  const out: unknown[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v) || depth > 6) {
      out.push(v);
      return;
    }
    seen.add(v);
    out.push(v);
    for (const k of Reflect.ownKeys(v as object)) {
      let x: unknown;
      try {
        x = (v as Record<PropertyKey, unknown>)[k];
      } catch {
        continue;
      }
      walk(x, depth + 1);
    }
    // Our classes' getters and argument-free reads, invoked on the object itself
    // (built-in prototypes are skipped: Array#reverse and the like mutate).
    if (Array.isArray(v) || ArrayBuffer.isView(v)) return;
    for (let p = Object.getPrototypeOf(v); p && p !== Object.prototype && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
      for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) {
        if (d.get) walk(d.get.call(v), depth + 1);
        else if (k === 'toObject' || k === 'toJSON') walk(d.value.call(v), depth + 1);
      }
    }
  };
  walk(root, 0);
  return out;
}

test('a processor cannot reach the payload or the raw frame', () => {
  const rec = new OutputRecord();
  rec.protocol = 'secret';
  rec.labels.set('sip.method', 'INVITE');
  rec.payload = new SecretPayload();
  rec.rawBuf = new Uint8Array([0xde, 0xad]);
  rec.rawLen = 2;
  const view = new ProcessorView(rec);
  const v = view as unknown as Record<string, unknown>;
  assert.equal(v.payload, undefined);
  assert.equal(v.record, undefined);
  assert.equal(v.rawBuf, undefined);
  assert.deepEqual(Reflect.ownKeys(view), []);
  assert.ok(!JSON.stringify(view).includes(SECRET));
  const all = reachable(view);
  assert.ok(!all.includes(rec), 'the record itself is reachable');
  assert.ok(!all.includes(rec.payload), 'the payload is reachable');
  assert.ok(!all.includes(rec.rawBuf), 'the raw frame is reachable');
  assert.ok(!all.some((x) => x === SECRET), 'a payload field is reachable');
  // The envelope and labels are.
  assert.equal(view.protocol, 'secret');
  assert.equal(view.labels.get('sip.method'), 'INVITE');
  assert.equal(view.hasRaw, true);
  // Labels are writable; envelope fields are not.
  view.labels.set('env', 'lab');
  assert.equal(rec.labels.get('env'), 'lab');
  assert.throws(() => ((view as unknown as { protocol: string }).protocol = 'x'), TypeError);
});

test('processors run by priority; returning nothing drops, counted per processor', () => {
  const order: string[] = [];
  const mk = (name: string, priority: number, keep: (n: number) => boolean): Processor => {
    let n = 0;
    return {
      priority,
      process(v) {
        order.push(name);
        v.labels.set(`seen.${name}`, '1');
        return keep(n++) ? v : undefined;
      },
    };
  };
  const procs = [mk('late', 50, () => true), mk('every-third', 10, (n) => n % 3 === 0), mk('odd', 20, (n) => n % 2 === 1)];
  const { pipeline, records } = runFile(SAMPLE, { processors: procs, processorNames: ['late', 'every-third', 'odd'] });
  assert.deepEqual(order.slice(0, 2), ['every-third', 'odd'], 'lowest priority first, task order ignored');
  assert.equal(order.indexOf('late'), 6, 'record 1 dropped by odd, records 2 and 3 by every-third, record 4 passes all');
  assert.deepEqual(pipeline.processorNames, ['every-third', 'odd', 'late']);
  const st = pipeline.stats;
  // 230 records: every-third keeps 77, odd keeps 38 of those, late keeps all.
  assert.deepEqual(Array.from(st.processorDrops), [153, 39, 0]);
  assert.equal(records.length, 38);
  assert.equal(st.records, 38);
  const labels = JSON.parse(text(records[0])).labels;
  assert.deepEqual(Object.keys(labels), ['seen.every-third', 'seen.odd', 'seen.late']);
});

test('filter processor: first matching rule decides, default pass or drop, byte-valued labels compared in place', async () => {
  const r = await createRegistry();
  const filter = await r.instantiate(
    'processor',
    'filter',
    {
      rules: [
        { label: 'sip.method', values: ['OPTIONS', 'REGISTER'], action: 'drop' },
        { label: 'rtp.pt', values: ['8'], action: 'pass' },
        { label: 'rtp.pt', values: ['13', '8'], action: 'drop' },
      ],
    },
    ctx(),
  );
  const rec = new OutputRecord();
  const view = new ProcessorView(rec);
  const keep = (set: (o: OutputRecord) => void): boolean => {
    rec.reset();
    set(rec);
    return Boolean(filter.process(view));
  };
  assert.equal(keep((o) => o.labels.set('sip.method', 'OPTIONS')), false);
  assert.equal(keep((o) => o.labels.set('sip.method', 'REGISTER')), false);
  assert.equal(keep((o) => o.labels.set('sip.method', 'INVITE')), true);
  assert.equal(keep((o) => o.labels.set('sip.method', 'options')), true, 'values are case-sensitive');
  assert.equal(keep((o) => o.labels.set('rtp.pt', '8')), true, 'an earlier pass rule wins');
  assert.equal(keep((o) => o.labels.set('rtp.pt', '13')), false);
  assert.equal(keep(() => undefined), true);
  const b = new TextEncoder().encode('xREGISTERx');
  assert.equal(keep((o) => o.labels.setBytes('sip.method', b, 1, 8)), false);
  assert.equal(keep((o) => o.labels.setBytes('sip.method', b, 0, 9)), true);

  const strict = await r.instantiate('processor', 'filter', { rules: [{ label: 'env', values: ['prod'], action: 'pass' }], default: 'drop' }, ctx());
  rec.reset();
  assert.equal(strict.process(view), null);
  rec.labels.set('env', 'prod');
  assert.equal(strict.process(view), view);
});

test('label processor: node metadata injected, task labels win, parser labels kept unless overwrite', async () => {
  const r = await createRegistry();
  const rec = new OutputRecord();
  const view = new ProcessorView(rec);
  const label = await r.instantiate('processor', 'label', { labels: { dc: 'lab-3', team: 'voip' } }, ctx());
  rec.labels.set('team', 'from-parser');
  label.process(view);
  assert.deepEqual(rec.labels.toObject(), { team: 'from-parser', node: 'edge-bj-01', 'node-ip': '192.0.2.10', dc: 'lab-3' });
  const over = await r.instantiate('processor', 'label', { labels: { team: 'voip' }, node_metadata: false, overwrite: true }, ctx());
  rec.reset();
  rec.labels.set('team', 'from-parser');
  over.process(view);
  assert.deepEqual(rec.labels.toObject(), { team: 'voip' });
  // No clash (the usual case): all of them at once, after the parser's.
  rec.reset();
  rec.labels.setUint('rtp.seq', 7);
  label.process(view);
  rec.labels.set('after', 'x');
  assert.deepEqual(rec.labels.toObject(), { 'rtp.seq': '7', node: 'edge-bj-01', 'node-ip': '192.0.2.10', dc: 'lab-3', team: 'voip', after: 'x' });
  assert.equal(label.priority > (await r.instantiate('processor', 'filter', {}, ctx())).priority, true, 'filter runs before label by default');
});

test("fastVerdict: what filter and label do to any record without the keys they read, as process() does it", async () => {
  const r = await createRegistry();
  const configs: [string, object][] = [
    ['filter', { rules: [{ label: 'sip.method', values: ['OPTIONS'], action: 'drop' }] }],
    ['filter', { rules: [{ label: 'sip.method', values: ['INVITE'], action: 'pass' }, { label: 'dns.qr', values: ['1'], action: 'drop' }], default: 'drop' }],
    ['label', { labels: { dc: 'lab-3', team: 'voip' } }],
    ['label', { labels: { team: 'voip' }, node_metadata: false, overwrite: true }],
    ['label', { node_metadata: false }],
  ];
  const others = ['rtp.seq', 'call-id', 'codec', 'media', 'x.y'];
  for (const [name, config] of configs) {
    const p = await r.instantiate('processor', name, config, ctx());
    const v = p.fastVerdict?.();
    assert.ok(v, `${name} gives a verdict`);
    for (let n = 0; n <= others.length; n++) {
      // The record as process() leaves it, against the verdict applied to the same labels.
      const rec = new OutputRecord();
      const want = new OutputRecord();
      for (let i = 0; i < n; i++) {
        rec.labels.set(others[i], `v${i}`);
        want.labels.set(others[i], `v${i}`);
      }
      assert.ok(!v.reads.some((k) => others.slice(0, n).includes(k)));
      const kept = Boolean(p.process(new ProcessorView(rec)));
      assert.equal(kept, !v.drop, `${name} ${JSON.stringify(config)}: drop`);
      if (v.adds) want.labels.addShared(v.adds.E, 0, v.adds.words, v.adds.ids, 0, v.adds.ids.length);
      if (kept) assert.deepEqual(Object.entries(rec.labels.toObject()), Object.entries(want.labels.toObject()), `${name} ${JSON.stringify(config)}: labels`);
    }
  }
});

/** A test parser: takes UDP to port 2008 (the sample's RTP), labels it without allocating. */
class TestRtpParser implements Parser {
  readonly protocol = 'rtp';
  handled = 0;
  private readonly payload = new SecretPayload();
  canHandle(p: DecodedPacket): boolean {
    return p.proto === 17 && p.dport === 2008;
  }
  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    if (++this.handled % 10 === 0) return false; // nothing to output for every tenth
    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'rtp';
    out.labels.set('rtp.pt', '8');
    out.labels.setBytes('call-id', p.payloadBuf, p.payloadOff + 8, 4); // the SSRC bytes, as a context lookup would copy
    out.payload = this.payload;
    return true;
  }
}

test('dispatch: the first parser that accepts handles; no output is counted; others follow the unmatched policy', () => {
  const never: Parser = { protocol: 'never', canHandle: () => false, handle: () => true };
  const rtp = new TestRtpParser();
  const { pipeline, records } = runFile(SAMPLE, { parsers: [never, rtp], unmatched: 'drop' });
  const st = pipeline.stats;
  assert.equal(st.parserRecords[0], 0);
  assert.equal(rtp.handled, 229);
  assert.equal(st.parserNoOutput[1], 22);
  assert.equal(st.parserRecords[1], 207);
  assert.equal(st.unmatchedDrops, 1, 'the RTCP packet');
  assert.equal(records.length, 207);
  const j = JSON.parse(text(records[0]));
  assert.equal(j.protocol, 'rtp');
  assert.equal(j.labels['rtp.pt'], '8');
  assert.equal(j.labels['call-id'].length, 4);
  assert.equal(j.payload, 0);

  const fwd = runFile(SAMPLE, { parsers: [new TestRtpParser()], unmatched: 'forward' });
  assert.equal(fwd.pipeline.stats.unmatchedForwarded, 1);
  const rtcp = fwd.records.map((b) => JSON.parse(text(b))).find((x) => x.protocol !== 'rtp');
  assert.equal(rtcp.protocol, 'udp');
  assert.equal(rtcp.flow.dport, 2009);
});

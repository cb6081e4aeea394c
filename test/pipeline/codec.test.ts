// Record codecs: the JSON line shape (the `otus replay` contract), and the
// hand-written protobuf encoding decoded by protobufjs from proto/otus.proto
// to the same values, over every fixture capture plus records built here
// (IPv6, tunnel, labels with escapes and non-ASCII, byte labels, raw frame).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import { decodeRecord } from '../../src/decode/record.js';
import { TunnelType } from '../../src/decode/packet.js';
import { encodeJson } from '../../src/pipeline/codec-json.js';
import { encodeProtobuf, protobufSize } from '../../src/pipeline/codec-protobuf.js';
import { OutputRecord, type Payload } from '../../src/pipeline/record.js';
import { ROOT, SAMPLE, allCaptures, runFile, text } from './helpers.js';

const root = protobuf.loadSync(join(ROOT, 'proto/otus.proto'));
const RecordMsg = root.lookupType('otus.v1.Record');
const L4 = root.lookupType('otus.v1.L4Payload');

const KEYS = ['ts', 'protocol', 'flow', 'network', 'labels', 'payload'];

function ipText(b: Uint8Array | undefined): string | null {
  if (!b || b.length === 0) return null;
  if (b.length === 4) return Array.from(b).join('.');
  // Compare IPv6 through the decode formatter's output, not a second implementation: canonicalise via URL.
  const hex = Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16)).join(':');
  return new URL(`http://[${hex}]/`).hostname.slice(1, -1);
}

function macText(b: Uint8Array | undefined): string | null {
  return b && b.length ? Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':') : null;
}

/** The JSON a protobuf record should print as, built from the protobufjs decoding. */
function fromProto(bytes: Uint8Array): Record<string, unknown> {
  const m = RecordMsg.toObject(RecordMsg.decode(bytes), { longs: Number, bytes: Array, defaults: false, arrays: true, objects: true }) as Record<string, any>;
  const f = m.flow ?? {};
  const n = m.network ?? {};
  const b = (x: number[] | undefined): Uint8Array | undefined => (x ? Uint8Array.from(x) : undefined);
  let ts: string | null = null;
  if (m.hasTs) {
    const iso = new Date((m.tsSec ?? 0) * 1000).toISOString().slice(0, 19);
    ts = `${iso}.${String(m.tsNsec ?? 0).padStart(9, '0')}`;
  }
  const t = n.tunnel;
  return {
    ts,
    protocol: m.protocol,
    flow: { src: ipText(b(f.src)), dst: ipText(b(f.dst)), sport: f.sport ?? null, dport: f.dport ?? null, proto: f.proto ?? null },
    network: {
      ip_version: n.ipVersion || null,
      src_mac: macText(b(n.srcMac)),
      dst_mac: macText(b(n.dstMac)),
      vlans: n.vlans ?? [],
      tunnel: t ? { type: t.type, vni: t.vni ?? null, key: t.key ?? null, outer_src: ipText(b(t.outerSrc)), outer_dst: ipText(b(t.outerDst)) } : null,
      ttl: n.ttl ?? null,
      len: n.len ?? 0,
      caplen: n.caplen ?? 0,
    },
    labels: m.labels ?? {},
    payload: m.payload ? Uint8Array.from(m.payload) : null,
    raw: m.raw ? Buffer.from(m.raw).toString('base64') : undefined,
  };
}

/** JSON record with ts cut to 9 digits for comparison with protobuf's exact nanoseconds. */
function normaliseJsonTs(j: Record<string, any>): void {
  if (typeof j.ts === 'string') {
    const [whole, frac = ''] = j.ts.slice(0, -1).split('.');
    j.ts = `${whole}.${frac.padEnd(9, '0')}`;
  }
}

test('JSON: one line per record, keys in contract order, fields as the decoder saw them', () => {
  const { records } = runFile(SAMPLE);
  assert.equal(records.length, 230);
  const decoder = new Decoder();
  const r = openCapture(SAMPLE);
  let i = 0;
  while (r.next()) {
    const line = text(records[i]);
    assert.ok(line.endsWith('}\n') && line.indexOf('\n') === line.length - 1, 'exactly one line');
    const j = JSON.parse(line);
    assert.deepEqual(Object.keys(j), KEYS);
    const d = JSON.parse(decodeRecord(decoder.decode(r.frame), i + 1, r.frame.hasTs, r.frame.tsDigits));
    assert.equal(j.ts, d.ts);
    assert.deepEqual(j.flow, { src: d.src, dst: d.dst, sport: d.sport, dport: d.dport, proto: d.proto });
    assert.deepEqual(Object.keys(j.network), ['ip_version', 'src_mac', 'dst_mac', 'vlans', 'tunnel', 'ttl', 'len', 'caplen']);
    assert.equal(j.network.src_mac, d.src_mac);
    assert.equal(j.network.ttl, d.ttl);
    assert.equal(j.network.len, d.len);
    assert.equal(j.protocol, d.proto === 17 ? 'udp' : 'ip');
    assert.deepEqual(j.payload, { payload_len: d.payload_len });
    assert.deepEqual(j.labels, {});
    i++;
  }
});

test('JSON and protobuf agree on every record of every fixture capture', () => {
  let n = 0;
  for (const file of allCaptures()) {
    const js = runFile(file, { format: 'json' }).records;
    const pb = runFile(file, { format: 'protobuf' }).records;
    assert.equal(js.length, pb.length, file);
    for (let i = 0; i < js.length; i++) {
      const j = JSON.parse(text(js[i]));
      const p = fromProto(pb[i]);
      normaliseJsonTs(j);
      const l4 = p.payload ? (L4.toObject(L4.decode(p.payload as Uint8Array)) as { payloadLen?: number }) : {};
      assert.deepEqual({ ...p, payload: { payload_len: l4.payloadLen ?? null }, raw: undefined }, { ...j, raw: undefined }, `${file} record ${i}`);
      n++;
    }
  }
  assert.ok(n > 700, `compared ${n} records`);
});

class TestPayload implements Payload {
  readonly type = 'test';
  writeJson(buf: Uint8Array, off: number, end: number): number {
    const s = '{"k":[1,2]}';
    if (end - off < s.length) return -1;
    for (let i = 0; i < s.length; i++) buf[off++] = s.charCodeAt(i);
    return off;
  }
  binarySize(): number {
    return 3;
  }
  writeBinary(buf: Uint8Array, off: number): number {
    buf[off] = 0x08;
    buf[off + 1] = 0x96;
    buf[off + 2] = 0x01;
    return off + 3;
  }
}

function builtRecord(): OutputRecord {
  const r = new OutputRecord();
  r.hasTs = true;
  r.tsSec = 1_700_000_000;
  r.tsNsec = 123_456_789;
  r.tsDigits = 9;
  r.protocol = 'test';
  r.ipVersion = 6;
  r.src.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  r.dst.set([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55]);
  r.sport = 5060;
  r.dport = 0;
  r.proto = 17;
  r.vlanCount = 2;
  r.vlans[0] = 100;
  r.vlans[1] = 4095;
  r.tunnelType = TunnelType.Vxlan;
  r.tunnelId = 0xffffff;
  r.outerIpVersion = 4;
  r.outerSrc.set([192, 0, 2, 1]);
  r.outerDst.set([198, 51, 100, 7]);
  r.ttl = 0;
  r.len = 1500;
  r.caplen = 96;
  r.labels.set('sip.from', '"Zoë" <sip:zoe@example.com>\\\n\u0001 ☎ 𝄞');
  const v = new TextEncoder().encode('PCMA/8000');
  r.labels.setBytes('codec', v, 0, v.length);
  r.labels.set('call-id', '');
  r.payload = new TestPayload();
  r.rawBuf = Uint8Array.from([1, 2, 3, 4, 5]);
  r.rawOff = 1;
  r.rawLen = 4;
  return r;
}

test('a built record: escapes, non-ASCII, byte labels, IPv6, tunnel, raw frame, in both codecs', () => {
  const r = builtRecord();
  const buf = new Uint8Array(4096);
  const jl = encodeJson(r, buf, 0, buf.length);
  const j = JSON.parse(text(buf.subarray(0, jl)));
  assert.equal(j.ts, '2023-11-14T22:13:20.123456789Z');
  assert.deepEqual(j.flow, { src: '2001:db8::1', dst: 'fe80::211:22ff:fe33:4455', sport: 5060, dport: 0, proto: 17 });
  assert.deepEqual(j.network.tunnel, { type: 'vxlan', vni: 0xffffff, key: null, outer_src: '192.0.2.1', outer_dst: '198.51.100.7' });
  assert.deepEqual(j.network.vlans, [100, 4095]);
  assert.equal(j.network.ttl, 0);
  assert.deepEqual(j.labels, { 'sip.from': '"Zoë" <sip:zoe@example.com>\\\n\u0001 ☎ 𝄞', codec: 'PCMA/8000', 'call-id': '' });
  assert.deepEqual(j.payload, { k: [1, 2] });
  assert.equal(j.raw, Buffer.from([2, 3, 4, 5]).toString('base64'));

  const pl = encodeProtobuf(r, buf, 0, buf.length);
  assert.equal(pl, protobufSize(r));
  const p = fromProto(buf.slice(0, pl));
  normaliseJsonTs(j);
  assert.deepEqual(p.labels, j.labels);
  assert.deepEqual(p.flow, j.flow);
  assert.deepEqual(p.network, j.network);
  assert.equal(p.ts, j.ts);
  assert.equal(p.raw, j.raw);
  assert.deepEqual(Array.from(p.payload as Uint8Array), [0x08, 0x96, 0x01]);
  // Too small a buffer: -1, never a throw or a partial record.
  assert.equal(encodeJson(r, buf, 0, 200), -1);
  assert.equal(encodeProtobuf(r, buf, 0, pl - 1), -1);
});

test('timestamps: microsecond digits, pre-1970 and far-future seconds, absent ts', () => {
  const r = new OutputRecord();
  r.protocol = 'eth';
  const buf = new Uint8Array(2048);
  const ts = (): unknown => JSON.parse(text(buf.subarray(0, encodeJson(r, buf, 0, buf.length)))).ts;
  assert.equal(ts(), null);
  r.hasTs = true;
  for (const [sec, nsec, digits] of [
    [0, 0, 6],
    [951782400, 999_999_000, 6], // 2000-02-29
    [-1, 500_000_000, 9],
    [253402300799, 1, 9], // 9999-12-31T23:59:59
    [253402300800, 0, 6], // +010000
    [-62198755200, 0, 6], // -000001 (1 BC)
  ] as const) {
    r.tsSec = sec;
    r.tsNsec = nsec;
    r.tsDigits = digits;
    const iso = new Date(sec * 1000).toISOString();
    const frac = String(nsec).padStart(9, '0').slice(0, digits);
    assert.equal(ts(), `${iso.slice(0, iso.indexOf('.'))}.${frac}Z`, `sec ${sec}`);
    const pl = encodeProtobuf(r, buf, 0, buf.length);
    const m = RecordMsg.toObject(RecordMsg.decode(buf.subarray(0, pl)), { longs: Number }) as { tsSec?: number; tsNsec?: number };
    assert.equal(m.tsSec ?? 0, sec);
    assert.equal(m.tsNsec ?? 0, nsec);
  }
});

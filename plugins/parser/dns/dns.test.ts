// DNS parser unit tests on messages built byte by byte: every RDATA type the
// parser decodes, EDNS(0) options, name compression with loops, bad pointers
// and over-long names, the TC bit, rejections by reason, the protobuf size,
// and DNS over TCP through the pipeline's reassembly (two messages in one
// segment, one message over two segments).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodedPacket } from '../../../src/decode/packet.js';
import { encodeJson } from '../../../src/pipeline/codec-json.js';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { DnsParser } from './index.js';
import { MAX_JUMPS } from './message.js';
import { Decoder } from '../../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../../src/decode/options.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import { MemorySink } from '../../../src/pipeline/sink.js';
import { ENCODERS } from '../../../src/pipeline/codec.js';
import { tcpFrame as tcpFrameTo } from '../../../test/helpers/bytes.js';

// ---- message builder ----
function name(n: string): number[] {
  if (n === '.') return [0];
  const out: number[] = [];
  for (const l of n.split('.')) out.push(l.length, ...Buffer.from(l, 'latin1'));
  out.push(0);
  return out;
}
const u16 = (v: number): number[] => [v >>> 8, v & 255];
const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): number[] {
  return [...u16(id), ...u16(flags), ...u16(qd), ...u16(an), ...u16(ns), ...u16(ar)];
}
function rr(owner: number[], type: number, rdata: number[], cls = 1, ttl = 300): number[] {
  return [...owner, ...u16(type), ...u16(cls), ...u32(ttl), ...u16(rdata.length), ...rdata];
}
const question = (n: string, type: number): number[] => [...name(n), ...u16(type), ...u16(1)];

interface Parsed {
  ok: boolean;
  labels: Record<string, string>;
  payload: any;
}

const parser = new DnsParser({ ports: [53], tcp: true });
const pkt = new DecodedPacket();
const rec = new OutputRecord();
const jsonBuf = new Uint8Array(1 << 20);

function parse(msg: number[] | Uint8Array): Parsed {
  const b = msg instanceof Uint8Array ? msg : Uint8Array.from(msg);
  pkt.ipVersion = 4;
  pkt.proto = 17;
  pkt.sport = 33333;
  pkt.dport = 53;
  pkt.payloadBuf = b;
  pkt.payloadOff = 0;
  pkt.payloadLen = b.length;
  rec.reset();
  assert.ok(parser.canHandle(pkt));
  const ok = parser.handle(pkt, rec, false, 6);
  if (!ok) return { ok, labels: {}, payload: null };
  const n = encodeJson(rec, jsonBuf, 0, jsonBuf.length);
  assert.ok(n > 0, 'record encodes');
  const line = JSON.parse(Buffer.from(jsonBuf.subarray(0, n)).toString('utf8'));
  // The protobuf payload is exactly as long as announced.
  const pb = new Uint8Array(rec.payload!.binarySize() + 8);
  assert.equal(rec.payload!.writeBinary(pb, 0, pb.length), rec.payload!.binarySize());
  return { ok, labels: line.labels, payload: line.payload };
}

test('a query: labels from the header and first question', () => {
  const r = parse([...header(0xbeef, 0x0120, 1, 0, 0, 0), ...question('www.example.org', 28)]);
  assert.deepEqual(r.labels, { 'dns.id': '48879', 'dns.qr': '0', 'dns.query': 'www.example.org', 'dns.type': 'AAAA', 'dns.rcode': '0' });
  assert.equal(r.payload.rd, true);
  assert.equal(r.payload.ad, true);
  assert.deepEqual(r.payload.questions, [{ name: 'www.example.org', type: 'AAAA', class: 'IN' }]);
  assert.equal(r.payload.malformed, undefined);
});

test('a response with every decoded RDATA type, names compressed', () => {
  const q = question('example.com', 255); // name at offset 12
  const ptr = [0xc0, 12];
  const msg = [
    ...header(7, 0x8583, 1, 11, 1, 0), // QR AA RD RA, rcode 3
    ...q,
    ...rr(ptr, 1, [192, 0, 2, 1]),
    ...rr(ptr, 28, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ...rr(ptr, 5, [3, 0x77, 0x77, 0x77, 0xc0, 12]),
    ...rr(ptr, 15, [...u16(10), 4, 0x6d, 0x61, 0x69, 0x6c, 0xc0, 12]),
    ...rr(ptr, 16, [5, ...Buffer.from('hello'), 3, 0x22, 0x5c, 0x01]),
    ...rr(ptr, 33, [...u16(1), ...u16(5), ...u16(5060), 3, 0x73, 0x69, 0x70, 0xc0, 12]),
    ...rr(ptr, 257, [128, 5, ...Buffer.from('issue'), ...Buffer.from('ca.example.net')]),
    ...rr(ptr, 12, name('host.example.com')),
    ...rr(ptr, 2, [2, 0x6e, 0x73, 0xc0, 12]),
    ...rr(ptr, 35, [...u16(100), ...u16(10), 1, 0x55, 7, ...Buffer.from('E2U+sip'), 0, 0]),
    ...rr(ptr, 99, [2, 0x76, 0x3d]), // SPF
    ...rr(ptr, 6, [...name('ns1.example.com'), 5, 0x61, 0x2e, 0x62, 0x5c, 0x63, 0xc0, 12, ...u32(2024010101), ...u32(7200), ...u32(900), ...u32(1209600), ...u32(300)]),
  ];
  const r = parse(msg);
  assert.equal(r.labels['dns.qr'], '1');
  assert.equal(r.labels['dns.rcode'], '3');
  assert.equal(r.labels['dns.type'], 'ANY');
  const a = r.payload.answers;
  assert.equal(a.length, 11);
  assert.equal(a[0].data, '192.0.2.1');
  assert.equal(a[1].data, '2001:db8::1');
  assert.equal(a[2].data, 'www.example.com');
  assert.deepEqual([a[3].preference, a[3].exchange], [10, 'mail.example.com']);
  assert.deepEqual(a[4].data, ['hello', '"\\\u0001']);
  assert.deepEqual([a[5].priority, a[5].weight, a[5].port, a[5].target], [1, 5, 5060, 'sip.example.com']);
  assert.deepEqual([a[6].flags, a[6].tag, a[6].value], [128, 'issue', 'ca.example.net']);
  assert.equal(a[7].data, 'host.example.com');
  assert.equal(a[8].data, 'ns.example.com');
  assert.deepEqual([a[9].order, a[9].preference, a[9].flags, a[9].services, a[9].regexp, a[9].replacement], [100, 10, 'U', 'E2U+sip', '', '.']);
  assert.deepEqual(a[10].data, ['v=']);
  const soa = r.payload.authorities[0];
  assert.equal(soa.mname, 'ns1.example.com');
  assert.equal(soa.rname, 'a\\.b\\\\c.example.com', 'dot and backslash inside a label are escaped');
  assert.deepEqual([soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum], [2024010101, 7200, 900, 1209600, 300]);
  assert.equal(r.payload.aa, true);
  assert.equal(r.payload.malformed, undefined);
});

test('OPT with ECS, EDE, cookie and an unknown option; DO bit and extended rcode', () => {
  const opts = [
    ...u16(8), ...u16(7), ...u16(1), 24, 0, 198, 51, 100, // ECS 198.51.100.0/24
    ...u16(15), ...u16(6), ...u16(18), ...Buffer.from('oops'), // EDE 18 "oops"
    ...u16(10), ...u16(8), 1, 2, 3, 4, 5, 6, 7, 8,
    ...u16(65001), ...u16(1), 0xff,
  ];
  const r = parse([...header(1, 0x8000, 1, 0, 0, 1), ...question('a.b', 1), 0, ...u16(41), ...u16(1232), 1, 0, 0x80, 0, ...u16(opts.length), ...opts]);
  const o = r.payload.additionals[0];
  assert.deepEqual([o.name, o.type, o.udp_size, o.ext_rcode, o.version, o.do], ['.', 'OPT', 1232, 1, 0, true]);
  assert.deepEqual(o.options[0], { code: 8, name: 'ECS', family: 1, source_prefix: 24, scope_prefix: 0, address: '198.51.100.0' });
  assert.deepEqual(o.options[1], { code: 15, name: 'EDE', info_code: 18, extra_text: 'oops' });
  assert.deepEqual(o.options[2], { code: 10, name: 'COOKIE', data: '0102030405060708' });
  assert.deepEqual(o.options[3], { code: 65001, data: 'ff' });
});

test('SVCB (64) params: mandatory, alpn, no-default-alpn, port, hints, ech, dohpath, unknown key', () => {
  const params = [
    ...u16(0), ...u16(4), ...u16(1), ...u16(3),
    ...u16(1), ...u16(6), 2, 0x68, 0x32, 2, 0x68, 0x33,
    ...u16(2), ...u16(0),
    ...u16(3), ...u16(2), ...u16(8443),
    ...u16(4), ...u16(8), 192, 0, 2, 1, 192, 0, 2, 2,
    ...u16(5), ...u16(3), 0xaa, 0xbb, 0xcc,
    ...u16(6), ...u16(16), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
    ...u16(7), ...u16(16), ...Buffer.from('/q{?dns}'.padEnd(16, 'x')),
    ...u16(667), ...u16(2), 0x01, 0x02,
  ];
  const r = parse([...header(2, 0x8000, 1, 1, 0, 0), ...question('_dns.resolver.arpa', 64), ...rr([0xc0, 12], 64, [...u16(1), ...name('doh.example'), ...params])]);
  const a = r.payload.answers[0];
  assert.equal(a.type, 'SVCB');
  assert.equal(a.target, 'doh.example');
  assert.deepEqual(a.params, {
    mandatory: ['alpn', 'port'],
    alpn: ['h2', 'h3'],
    'no-default-alpn': true,
    port: 8443,
    ipv4hint: ['192.0.2.1', '192.0.2.2'],
    ech: 'aabbcc',
    ipv6hint: ['2001:db8::53'],
    dohpath: '/q{?dns}xxxxxxxx',
    key667: '0102',
  });
  assert.equal(r.payload.malformed, undefined);
  // An alpn id longer than its value: malformed, JSON still valid.
  const bad = parse([...header(3, 0x8000, 1, 1, 0, 0), ...question('x', 65), ...rr([0xc0, 12], 65, [...u16(1), 0, ...u16(1), ...u16(3), 5, 0x68, 0x32])]);
  assert.equal(bad.payload.malformed, 'rdata_malformed');
  assert.equal(bad.payload.answers[0].params.alpn, null);
});

test('unknown types print as TYPE<n> (label too), unknown classes as CLASS<n>, RDATA as hex', () => {
  const r = parse([...header(4, 0x8000, 1, 1, 0, 0), ...question('x.y', 65280), ...rr([0xc0, 12], 65280, [1, 2, 0xfe], 77)]);
  assert.equal(r.labels['dns.type'], 'TYPE65280');
  assert.deepEqual(r.payload.answers[0], { name: 'x.y', type: 'TYPE65280', class: 'CLASS77', ttl: 300, rdata: '0102fe' });
});

test('names: root, non-printable bytes as \\DDD, loop, bad pointer, label type, too long, truncated', () => {
  assert.equal(parse([...header(5, 0, 1, 0, 0, 0), ...question('.', 2)]).labels['dns.query'], '.');
  assert.equal(parse([...header(5, 0, 1, 0, 0, 0), 3, 0x61, 0x20, 0x7f, 0, 0, 1, 0, 1]).labels['dns.query'], 'a\\032\\127');
  assert.equal(parse([...header(5, 0, 1, 0, 0, 0), 1, 0x22, 0, 0, 1, 0, 1]).payload.questions[0].name, '"');

  // A pointer to itself: loop, stopped after MAX_JUMPS.
  let r = parse([...header(6, 0, 1, 0, 0, 0), 0xc0, 12, 0, 1, 0, 1]);
  assert.equal(r.payload.malformed, 'name_loop');
  assert.equal(r.labels['dns.query'], undefined);
  assert.equal(r.labels['dns.id'], '6');
  // Two pointers pointing at each other (12 → 14 → 12 ...), in an answer's owner name.
  r = parse([...header(6, 0x8000, 0, 1, 0, 0), 0xc0, 14, 0xc0, 12, ...u16(1), ...u32(1), ...u16(4), 1, 2, 3, 4]);
  assert.equal(r.payload.malformed, 'name_loop');
  assert.equal(r.payload.answers.length, 0);
  assert.equal(r.labels['dns.query'], undefined, 'no question, no query label');
  r = parse([...header(7, 0, 1, 0, 0, 0), 0xc0, 200, 0, 1, 0, 1]);
  assert.equal(r.payload.malformed, 'name_bad_pointer');
  r = parse([...header(7, 0, 1, 0, 0, 0), 0x41, 0, 0, 1, 0, 1]);
  assert.equal(r.payload.malformed, 'name_bad_label_type');
  const long: number[] = [];
  for (let i = 0; i < 5; i++) long.push(63, ...new Array(63).fill(0x61));
  r = parse([...header(8, 0, 1, 0, 0, 0), ...long, 0, 0, 1, 0, 1]);
  assert.equal(r.payload.malformed, 'name_too_long');
  r = parse([...header(8, 0, 1, 0, 0, 0), 10, 0x61]);
  assert.equal(r.payload.malformed, 'name_truncated');
});

test('compression pointer chains: MAX_JUMPS followed, one more is a loop', () => {
  // Question k's name is a pointer to question k-1's name; question 1's points at "z" (offset 12).
  const build = (jumps: number): number[] => {
    const m = [...header(10, 0, 1 + jumps, 0, 0, 0), ...question('z', 1)];
    let prev = 12;
    for (let k = 1; k <= jumps; k++) {
      const here = m.length;
      m.push(0xc0 | (prev >>> 8), prev & 255, ...u16(1), ...u16(1));
      prev = here;
    }
    return m;
  };
  // Question k's name is a pointer to question k-1's, so the last one follows `jumps` pointers.
  const ok = parse(build(MAX_JUMPS));
  assert.equal(ok.payload.malformed, undefined);
  assert.equal(ok.payload.questions.length, MAX_JUMPS + 1);
  assert.equal(ok.payload.questions[MAX_JUMPS].name, 'z');
  const loop = parse(build(MAX_JUMPS + 1));
  assert.equal(loop.payload.malformed, 'name_loop');
  assert.equal(loop.payload.questions.length, MAX_JUMPS + 1);
});

test('truncation: TC bit, counts promising more than the message holds, cut RR and RDATA; empty RDATA is fine', () => {
  const q = question('t.example', 1);
  let r = parse([...header(11, 0x8200, 1, 3, 0, 0), ...q, ...rr([0xc0, 12], 1, [1, 2, 3, 4])]);
  assert.equal(r.payload.tc, true);
  assert.equal(r.payload.answers.length, 1);
  assert.equal(r.payload.malformed, 'missing_records');
  r = parse([...header(11, 0x8000, 1, 1, 0, 0), ...q, 0xc0, 12, 0, 1, 0]);
  assert.equal(r.payload.malformed, 'rr_truncated');
  r = parse([...header(11, 0x8000, 1, 1, 0, 0), ...q, ...rr([0xc0, 12], 1, [1, 2, 3, 4]).slice(0, -2)]);
  assert.equal(r.payload.malformed, 'rdata_truncated');
  r = parse([...header(11, 0x8000, 1, 1, 0, 0), ...q, ...rr([0xc0, 12], 1, [1, 2, 3])]);
  assert.equal(r.payload.malformed, 'rdata_malformed');
  r = parse([...header(11, 0x2800, 1, 1, 0, 0), ...q, ...rr([0xc0, 12], 5, [], 254, 0)]);
  assert.equal(r.payload.malformed, undefined);
  assert.deepEqual(r.payload.answers[0], { name: 't.example', type: 'CNAME', class: 'NONE', ttl: 0 });
  r = parse([...header(11, 0x8000, 1, 0, 0, 0), 1, 0x74, 0, 0]);
  assert.equal(r.payload.malformed, 'question_truncated');
});

test('rejections are counted by reason; malformed messages by reason', () => {
  const p = new DnsParser({ ports: [53], tcp: false });
  const before = p.stats.rejected[0];
  const d = new DecodedPacket();
  d.proto = 17;
  d.sport = 53;
  d.dport = 4000;
  d.payloadBuf = new Uint8Array(11);
  d.payloadLen = 11;
  assert.equal(p.handle(d, new OutputRecord(), false, 6), false);
  assert.equal(p.stats.rejected[0], before + 1);
  assert.deepEqual(p.counters(), { messages: 1, records: 0, rejected: { short_header: 1 }, malformed: {}, tcp_bytes_skipped: 0, tc: 0 });
  d.payloadBuf = Uint8Array.from([...header(1, 0x8200, 1, 0, 0, 0), 0xc0, 12, 0, 1, 0, 1]);
  d.payloadLen = d.payloadBuf.length;
  assert.equal(p.handle(d, new OutputRecord(), false, 6), true);
  assert.deepEqual(p.counters(), { messages: 2, records: 1, rejected: { short_header: 1 }, malformed: { name_loop: 1 }, tcp_bytes_skipped: 0, tc: 1 });
  assert.deepEqual(p.tcp.ports, []);
  d.proto = 6;
  assert.equal(p.canHandle(d), false, 'TCP never reaches handle (the reassembler takes it)');
});

// ---- DNS over TCP through the pipeline's reassembly ----
const tcpFrame = (sport: number, dport: number, seq: number, flags: number, payload: ArrayLike<number>): Uint8Array =>
  tcpFrameTo(sport, dport, seq, flags, payload, 53);

test('DNS over TCP: two messages in one segment, one message over two segments, zero length counted', () => {
  const p = new DnsParser({ ports: [53], tcp: true });
  const sink = new MemorySink();
  const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [p], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink });
  const m1 = [...header(21, 0x0100, 1, 0, 0, 0), ...question('one.example', 1)];
  const m2 = [...header(22, 0x0100, 1, 0, 0, 0), ...question('two.example', 28)];
  const m3 = [...header(23, 0x8180, 1, 1, 0, 0), ...question('three.example', 1), ...rr([0xc0, 12], 1, [10, 9, 8, 7])];
  const framed = (m: number[]): number[] => [...u16(m.length), ...m];
  const seg1 = [...framed(m1), ...framed(m2)];
  const resp = framed(m3);
  const frames = [
    tcpFrame(40000, 53, 1000, 0x02, []), // SYN
    tcpFrame(53, 40000, 5000, 0x12, []), // SYN-ACK
    tcpFrame(40000, 53, 1001, 0x18, seg1),
    tcpFrame(53, 40000, 5001, 0x18, resp.slice(0, 7)),
    tcpFrame(53, 40000, 5008, 0x18, [...resp.slice(7), 0, 0]),
  ];
  for (const f of frames) pl.processBytes(f, new DataView(f.buffer), 0, f.length, f.length, 1, 1, 0, true, 6);
  pl.flush();
  const recs = sink.records().map((r) => JSON.parse(Buffer.from(r).toString('utf8')));
  assert.deepEqual(recs.map((r) => [r.labels['dns.id'], r.labels['dns.query'], r.labels['dns.qr'], r.flow.proto]), [
    ['21', 'one.example', '0', 6],
    ['22', 'two.example', '0', 6],
    ['23', 'three.example', '1', 6],
  ]);
  assert.equal(recs[2].payload.answers[0].data, '10.9.8.7');
  assert.equal(p.stats.rejected[1], 1, 'the zero length prefix');
  assert.equal(pl.stats.parserRecords[0], 3);
});

// webrtc parser unit tests on datagrams built byte by byte: the RFC 7983
// demultiplexing ranges, STUN (RFC 8489) method/class bits and attributes
// (XOR-MAPPED-ADDRESS over IPv4 and IPv6, ERROR-CODE, USERNAME, PRIORITY),
// classic STUN without the cookie, DTLS records (several per datagram,
// handshake type only in plaintext epoch 0, DTLS 1.3 unified headers, CID),
// SRTP/SRTCP headers, TURN ChannelData, rejections and malformations counted
// by reason, exact protobuf size, and call-id from the flow registry.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodedPacket } from '../../../src/decode/packet.js';
import { encodeJson } from '../../../src/pipeline/codec-json.js';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { FlowKey, FlowRegistry } from '../../../src/shm/registry.js';
import { WebrtcParser } from './index.js';

const u16 = (v: number): number[] => [v >>> 8, v & 255];
const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const COOKIE = u32(0x2112a442);
const TXID = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

function stun(type: number, attrs: number[][], cookie = COOKIE): number[] {
  const body: number[] = [];
  for (const a of attrs) {
    body.push(...a);
    while (body.length % 4) body.push(0);
  }
  return [...u16(type), ...u16(body.length), ...cookie, ...TXID, ...body];
}
const attr = (t: number, v: number[]): number[] => [...u16(t), ...u16(v.length), ...v];

const parser = new WebrtcParser({ ports: [3478], port_ranges: [[50000, 50010]], registered: true });
const pkt = new DecodedPacket();
const rec = new OutputRecord();
const buf = new Uint8Array(1 << 20);

function parse(bytes: number[], p: WebrtcParser = parser, d: DecodedPacket = pkt): { ok: boolean; labels: Record<string, string>; payload: any } {
  const b = Uint8Array.from(bytes);
  d.proto = 17;
  if (d.ipVersion === 0) {
    d.ipVersion = 4;
    d.sport = 50005;
    d.dport = 3478;
  }
  d.payloadBuf = b;
  d.payloadOff = 0;
  d.payloadLen = b.length;
  rec.reset();
  assert.ok(p.canHandle(d));
  if (!p.handle(d, rec, false, 6)) return { ok: false, labels: {}, payload: null };
  const n = encodeJson(rec, buf, 0, buf.length);
  assert.ok(n > 0);
  const pb = new Uint8Array(4096);
  assert.equal(rec.payload!.writeBinary(pb, 0, pb.length), rec.payload!.binarySize());
  const j = JSON.parse(Buffer.from(buf.subarray(0, n)).toString('utf8'));
  return { ok: true, labels: j.labels, payload: j.payload };
}

test('STUN binding request and success response: method, class, ICE attributes, XOR-MAPPED-ADDRESS v4 and v6', () => {
  const req = parse(stun(0x0001, [attr(0x0006, [...Buffer.from('alice:bob')]), attr(0x0024, u32(1853817087)), attr(0x0025, []), attr(0x802a, [1, 2, 3, 4, 5, 6, 7, 8])]));
  assert.deepEqual(req.labels, { 'webrtc.kind': 'stun', 'stun.method': 'Binding', 'stun.class': 'request' });
  assert.equal(req.payload.transaction_id, '0102030405060708090a0b0c');
  assert.equal(req.payload.cookie, true);
  assert.deepEqual(req.payload.attributes, [
    { type: 6, name: 'USERNAME', value: 'alice:bob' },
    { type: 36, name: 'PRIORITY', value: 1853817087 },
    { type: 37, name: 'USE-CANDIDATE' },
    { type: 32810, name: 'ICE-CONTROLLING', value: '0102030405060708' },
  ]);
  // 192.0.2.1:40000 XORed with the cookie; 2001:db8::1 XORed with cookie + transaction ID.
  const x4 = [0, 1, ...u16(40000 ^ 0x2112), ...[192 ^ 0x21, 0 ^ 0x12, 2 ^ 0xa4, 1 ^ 0x42]];
  const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const mask = [...COOKIE, ...TXID];
  const x6 = [0, 2, ...u16(5004 ^ 0x2112), ...v6.map((b, i) => b ^ mask[i])];
  const resp = parse(stun(0x0101, [attr(0x0020, x4), attr(0x0020, x6), attr(0x0001, [0, 1, ...u16(3478), 10, 0, 0, 1])]));
  assert.deepEqual([resp.labels['stun.method'], resp.labels['stun.class']], ['Binding', 'success']);
  assert.deepEqual(resp.payload.attributes.map((a: any) => `${a.address}:${a.port}`), ['192.0.2.1:40000', '2001:db8::1:5004', '10.0.0.1:3478']);
});

test('STUN method/class bits (RFC 8489 §5), TURN methods, error response, indication, unknown method, classic STUN', () => {
  const cases: [number, string, string][] = [
    [0x0003, 'Allocate', 'request'],
    [0x0113, 'Allocate', 'error'],
    [0x0004, 'Refresh', 'request'],
    [0x0016, 'Send', 'indication'],
    [0x0017, 'Data', 'indication'],
    [0x0108, 'CreatePermission', 'success'],
    [0x0109, 'ChannelBind', 'success'],
    [0x0011, 'Binding', 'indication'],
    [0x03ef, '255', 'success'], // method 255 (no IANA name: decimal); 0x3exx would be DTLS by RFC 7983
  ];
  for (const [t, m, c] of cases) {
    const r = parse(stun(t, []));
    assert.deepEqual([r.labels['stun.method'], r.labels['stun.class']], [m, c], `type 0x${t.toString(16)}`);
    assert.equal(r.payload.type, t);
  }
  const err = parse(stun(0x0111, [attr(0x0009, [0, 0, 4, 1, ...Buffer.from('Unauthorized')]), attr(0x0014, [...Buffer.from('example.org')])]));
  assert.deepEqual(err.payload.attributes[0], { type: 9, name: 'ERROR-CODE', code: 401, reason: 'Unauthorized' });
  assert.equal(err.payload.attributes[1].value, 'example.org');
  const classic = parse(stun(0x0001, [], [9, 9, 9, 9]));
  assert.equal(classic.payload.cookie, false);
  assert.equal(classic.payload.transaction_id, '090909090102030405060708090a0b0c');
});

test('DTLS: several records, handshake type only in plaintext epoch 0, sequence numbers, DTLS 1.3 unified headers, CID', () => {
  const rec13 = (ct: number, epoch: number, seq: number, body: number[]): number[] => [ct, 0xfe, 0xfd, ...u16(epoch), ...u16(0), ...u32(seq), ...u16(body.length), ...body];
  const r = parse([...rec13(22, 0, 7, [16, 0, 0, 0]), ...rec13(20, 0, 8, [1]), ...rec13(22, 1, 0, [0xaa, 0xbb])]);
  assert.deepEqual(r.labels, { 'webrtc.kind': 'dtls', 'dtls.content-type': '22' });
  assert.deepEqual(r.payload.records, [
    { content_type: 22, version: 0xfefd, epoch: 0, sequence: 7, length: 4, handshake_type: 16 },
    { content_type: 20, version: 0xfefd, epoch: 0, sequence: 8, length: 1 },
    { content_type: 22, version: 0xfefd, epoch: 1, sequence: 0, length: 2 },
  ]);
  // Unified header 0x2f: C=0 S=1 L=1 epoch=3, 16-bit seq, length
  const u = parse([0x2f, ...u16(513), ...u16(3), 1, 2, 3, 0x27, 9, ...u16(0)]);
  assert.equal(u.labels['dtls.content-type'], undefined);
  assert.deepEqual(u.payload.records, [
    { unified: true, cid: false, epoch_bits: 3, sequence_bits: 16, sequence: 513, length: 3 },
    { unified: true, cid: false, epoch_bits: 3, sequence_bits: 8, sequence: 9, length: 0 },
  ]);
  const cid = parse([0x3f, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(cid.payload.records, [{ unified: true, cid: true, epoch_bits: 3 }]);
  assert.equal(cid.payload.malformed, undefined);
  const cut = parse([...rec13(22, 0, 1, [1, 0, 0]), 23, 0xfe, 0xfd, 0, 1]);
  assert.equal(cut.payload.malformed, 'dtls_record_truncated');
  assert.equal(cut.payload.records.length, 1);
});

test('SRTP and SRTCP headers (RFC 5761 demux by the second byte), TURN ChannelData', () => {
  const s = parse([0x90, 0x80 | 111, ...u16(4242), ...u32(160), ...u32(0xdeadbeef), ...u16(0xbede), ...u16(1), 1, 2, 3, 4, 9, 9, 9]);
  assert.deepEqual(s.labels, { 'webrtc.kind': 'srtp' });
  assert.deepEqual(s.payload, { kind: 'srtp', ssrc: 0xdeadbeef, pt: 111, seq: 4242, timestamp: 160, marker: true, padding: false, extension: true, csrc_count: 0, payload_len: 3 });
  const c = parse([0x81, 200, ...u16(6), ...u32(12345), ...new Array(20).fill(0), 0x80, 0, 0, 1]);
  assert.deepEqual(c.labels, { 'webrtc.kind': 'srtcp' });
  assert.deepEqual(c.payload, { kind: 'srtcp', pt: 200, count: 1, length: 6, ssrc: 12345 });
  const t = parse([0x40, 0x01, ...u16(12), 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(t.payload, { kind: 'turn-channel', channel: 0x4001, length: 12, inner: 'srtp' });
  const bad = parse([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0].map((b, i) => (i === 0 ? 0x83 : b)));
  assert.equal(bad.payload.malformed, 'rtp_header_truncated');
});

test('rejections by reason; malformed STUN attributes by reason; nothing for other ports', () => {
  const p = new WebrtcParser({ ports: [3478], port_ranges: [], registered: true });
  const d = new DecodedPacket();
  for (const bytes of [[0x05, 1, 2], [0x10, 0, 0, 0], [0x00, 1, 0, 4], stun(1, []).slice(0, 19), [0, 1, 0, 3, ...COOKIE, ...TXID, 0, 0, 0], [22, 3, 3, ...new Array(10).fill(0)], [22, 0xfe], [0x40, 0], [0x80, 0, 0]]) {
    d.ipVersion = 0;
    assert.equal(parse(bytes, p, d).ok, false);
  }
  const m = parse(stun(1, [attr(0x0020, [0, 3, 0, 0, 1, 2, 3, 4])]), p, d);
  assert.equal(m.payload.malformed, 'stun_attr_bad');
  const m2 = parse([...stun(1, []).slice(0, 2), 0, 4, ...COOKIE, ...TXID, 0, 6, 0, 9], p, d);
  assert.equal(m2.payload.malformed, 'stun_attr_truncated');
  assert.deepEqual(p.counters(), {
    messages: 11,
    records: 2,
    kinds: { stun: 2 },
    rejected: { unknown_first_byte: 1, zrtp: 1, stun_short: 2, stun_bad_length: 1, dtls_short: 1, dtls_bad_version: 1, turn_short: 1, rtp_short: 1 },
    malformed: { stun_attr_truncated: 1, stun_attr_bad: 1 },
    registered: 0,
    dtls_cid: 0,
  });
  d.sport = 1000;
  d.dport = 2000;
  d.payloadLen = 20;
  assert.equal(p.canHandle(d), false);
  d.dport = 50003;
  assert.equal(parser.canHandle(d), true, 'port_ranges');
  d.proto = 6;
  assert.equal(parser.canHandle(d), false, 'UDP only');
});

test('a flow registered in the task flow registry is taken on any port and labelled with its call-id', () => {
  const task = `webrtc-test-${process.pid}`;
  const reg = FlowRegistry.create(task, { capacity: 64 });
  try {
    const k = new FlowKey();
    assert.ok(reg.register(k.endpoint('198.51.100.7', 40002), { callId: 'call-42@example', codec: 'opus' }, 60_000) >= 0);
    const p = new WebrtcParser({ ports: [], port_ranges: [], registered: true }, reg);
    const d = new DecodedPacket();
    d.ipVersion = 4;
    d.src4 = (203 << 24) | (0 << 16) | (113 << 8) | 9;
    d.dst4 = (198 << 24) | (51 << 16) | (100 << 8) | 7;
    d.sport = 7000;
    d.dport = 40002;
    const r = parse(stun(1, []), p, d);
    assert.equal(r.labels['call-id'], 'call-42@example');
    // The reverse direction: the registered endpoint is the source.
    [d.src4, d.dst4, d.sport, d.dport] = [d.dst4, d.src4, d.dport, d.sport];
    assert.equal(parse([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], p, d).labels['call-id'], 'call-42@example');
    assert.equal(p.stats.registered, 2);
    d.sport = 40003;
    d.payloadBuf = Uint8Array.from(stun(1, []));
    d.payloadLen = 20;
    assert.equal(p.canHandle(d), false, 'an unregistered endpoint on an unconfigured port');
    const off = new WebrtcParser({ ports: [], port_ranges: [], registered: false }, reg);
    d.sport = 40002;
    assert.equal(off.canHandle(d), false, 'registered: false ignores the registry');
  } finally {
    reg.close();
  }
});

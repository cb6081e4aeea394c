// Unit checks of the golden-test machinery itself (no tshark needed): the
// PDML reader, the walk that turns tshark's layers into contract values, and
// the comparison rules.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compare, isoToEpochNs, type OtusRecord } from './compare.js';
import { CorpusDecodeAs } from './harness.js';
import { PdmlParser, parsePdml } from './pdml.js';
import { frameExpectations, type TsharkFrame } from './tshark.js';

// Shaped like tshark 4.0 output: an ICMP port-unreachable over GRE, quoting
// the IPv4/UDP header of the datagram that caused it (trimmed to the fields
// tshark.ts reads).
const ICMP_OVER_GRE = `<?xml version="1.0" encoding="utf-8"?>
<pdml version="0" creator="wireshark/4.0.17">
<packet>
  <proto name="geninfo" pos="0" showname="General information" size="127"></proto>
  <proto name="frame" showname="Frame 34" size="127" pos="0">
    <field name="frame.time_epoch" show="1055289987.106744000"/>
    <field name="frame.number" show="34"/>
    <field name="frame.len" show="127"/>
    <field name="frame.cap_len" show="127"/>
  </proto>
  <proto name="eth" size="14" pos="0">
    <field name="eth.dst" show="00:02:2d:56:4a:fd"/>
    <field name="eth.src" show="00:c0:ca:14:b0:52"/>
  </proto>
  <proto name="ip" size="20" pos="14">
    <field name="ip.hdr_len" show="20"/>
    <field name="ip.len" show="113"/>
    <field name="ip.flags" show="0x02"><field name="ip.flags.mf" show="0"/></field>
    <field name="ip.frag_offset" show="0"/>
    <field name="ip.ttl" show="236"/>
    <field name="ip.proto" show="47"/>
    <field name="ip.src" show="66.59.109.137"/>
    <field name="ip.dst" show="172.27.1.66"/>
  </proto>
  <proto name="gre" size="4" pos="34">
    <field name="gre.proto" show="0x0800"/>
  </proto>
  <proto name="ip" size="20" pos="38">
    <field name="ip.hdr_len" show="20"/>
    <field name="ip.len" show="89"/>
    <field name="ip.flags" show="0x00"><field name="ip.flags.mf" show="0"/></field>
    <field name="ip.frag_offset" show="0"/>
    <field name="ip.ttl" show="63"/>
    <field name="ip.proto" show="1"/>
    <field name="ip.src" show="172.28.2.3"/>
    <field name="ip.dst" show="66.59.111.190"/>
  </proto>
  <proto name="icmp" size="69" pos="58">
    <field name="icmp.type" show="3"/>
    <proto name="ip" size="20" pos="66">
      <field name="ip.len" show="61"/>
      <field name="ip.ttl" show="63"/>
      <field name="ip.proto" show="17"/>
      <field name="ip.src" show="66.59.111.190"/>
      <field name="ip.dst" show="172.28.2.3"/>
      <field name="_ws.expert" showname="Expert Info (Error): quoted length">
        <field name="_ws.expert.severity" show="8388608"/>
      </field>
    </proto>
    <proto name="udp" size="8" pos="86">
      <field name="udp.srcport" show="1025"/>
      <field name="udp.dstport" show="53"/>
    </proto>
  </proto>
</packet>
</pdml>
`;

function otusRecord(over: Partial<OtusRecord>): OtusRecord {
  return {
    frame: 1, ts: '2003-06-11T00:06:27.106744Z', caplen: 127, len: 127, src_mac: null, dst_mac: null,
    vlans: [], tunnel: null, ip_version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, ttl: 64,
    fragmented: false, reassembly: null, sport: 1, dport: 2, tcp_flags: null, payload_len: 10, error: null,
    ...over,
  };
}

function tsharkFrame(exp: TsharkFrame['exp'], malformed: string | null = null, frame = 1): TsharkFrame {
  return { frame, tsharkFrame: frame, nonPacket: false, malformed, exp, path: 'eth:ip:udp' };
}

test('the PDML reader keeps nesting and unescapes values', () => {
  const [pkt] = parsePdml('<packet><proto name="a" showname="x &amp; &quot;y&quot;"><field name="a.f" show="&lt;1&gt;"/><proto name="b" pos="3" size="4"/></proto></packet>');
  assert.ok(pkt);
  assert.equal(pkt.length, 1);
  assert.equal(pkt[0]!.showname, 'x & "y"');
  assert.equal(pkt[0]!.children[0]!.show, '<1>');
  assert.equal(pkt[0]!.children[1]!.name, 'b');
  assert.equal(pkt[0]!.children[1]!.size, 4);
});

test('the PDML reader accepts input split anywhere', () => {
  const whole = parsePdml(ICMP_OVER_GRE);
  assert.equal(whole.length, 1);
  for (const at of [1, 17, 100, 333, 1000]) {
    const out: ReturnType<typeof parsePdml> = [];
    const p = new PdmlParser((protos) => out.push(protos));
    for (let i = 0; i < ICMP_OVER_GRE.length; i += at) p.push(ICMP_OVER_GRE.slice(i, i + at));
    assert.deepEqual(out, whole, `pieces of ${at} characters`);
  }
});

test('tshark walk: innermost IP of the packet proper, never the ICMP-quoted one', () => {
  const [pkt] = parsePdml(ICMP_OVER_GRE);
  const f = frameExpectations(pkt!);
  assert.equal(f.frame, 34);
  assert.equal(f.malformed, null, 'an error inside the quoted packet does not make the frame malformed');
  assert.equal(f.path, 'eth:ip:gre:ip:icmp');
  assert.equal(f.exp.src, '172.28.2.3');
  assert.equal(f.exp.dst, '66.59.111.190');
  assert.equal(f.exp.proto, 1);
  assert.equal(f.exp.ttl, 63);
  assert.equal(f.exp.sport, null);
  assert.equal(f.exp.dport, null);
  assert.equal(f.exp.payload_len, 89 - 20 - 8);
  assert.equal(f.exp['tunnel.type'], 'gre');
  assert.equal(f.exp['tunnel.outer_src'], '66.59.109.137');
  assert.equal(f.exp.ts, '1055289987.106744000');
  assert.equal(f.exp.src_mac, '00:c0:ca:14:b0:52');
});

test('tshark walk: GRE whose payload tshark does not decode is not a tunnel', () => {
  const text = ICMP_OVER_GRE.replace(/<proto name="gre"[\s\S]*<\/packet>/, '<proto name="gre" size="4" pos="34"></proto><proto name="cdp" size="10" pos="38"></proto></packet>');
  const f = frameExpectations(parsePdml(text)[0]!);
  assert.equal(f.exp.tunnel, null);
  assert.equal(f.exp.src, '66.59.109.137');
  assert.equal(f.exp.proto, 47);
});

test('ISO timestamps become tshark epoch strings', () => {
  assert.equal(isoToEpochNs('2003-06-11T00:06:27.106744Z'), '1055289987.106744000');
  assert.equal(isoToEpochNs('1970-01-01T00:00:01.000000001Z'), '1.000000001');
  assert.equal(isoToEpochNs('2038-01-19T03:14:08Z'), '2147483648.000000000');
  assert.equal(isoToEpochNs(null), null);
});

test('compare: record keys always, other keys only on frames tshark finds well-formed', () => {
  const otus = [otusRecord({ frame: 1, caplen: 100, src: 'wrong' })];
  const r = compare('f', otus, [tsharkFrame({ caplen: 127, src: '10.0.0.1' }, 'Malformed Packet')]);
  assert.deepEqual(r.mismatches.map((m) => m.key), ['caplen']);
  assert.equal(r.malformed, 1);
});

test('compare: payload_len only when the whole frame was captured', () => {
  const cut = compare('f', [otusRecord({ caplen: 100, len: 1500, payload_len: 46 })], [tsharkFrame({ payload_len: 1446 })]);
  assert.equal(cut.mismatches.length, 0);
  const whole = compare('f', [otusRecord({ payload_len: 46 })], [tsharkFrame({ payload_len: 1446 })]);
  assert.deepEqual(whole.mismatches, [{ file: 'f', frame: 1, key: 'payload_len', otus: 46, tshark: 1446 }]);
});

test('compare: a key tshark has no value for is not compared; null is a value', () => {
  const none = compare('f', [otusRecord({ sport: 5 })], [tsharkFrame({})]);
  assert.equal(none.compared, 0);
  const nul = compare('f', [otusRecord({ sport: 5 })], [tsharkFrame({ sport: null })]);
  assert.equal(nul.mismatches.length, 1);
});

test('compare: tunnel members, vlans and frames missing on either side', () => {
  const otus = [
    otusRecord({ frame: 1, vlans: [10, 20], tunnel: { type: 'gre', vni: null, key: 7, outer_src: 'a', outer_dst: 'b' } }),
    otusRecord({ frame: 3 }),
  ];
  const ts = [
    tsharkFrame({ vlans: [10, 20], 'tunnel.type': 'erspan', 'tunnel.key': 7 }, null, 1),
    tsharkFrame({ tunnel: null }, null, 2),
  ];
  const r = compare('f', otus, ts);
  assert.deepEqual(r.mismatches.map((m) => `${m.frame}:${m.key}`), ['1:tunnel.type', '2:frame', '3:frame']);
});

test('compare: known differences are filtered, and reported once stale', () => {
  const known = [
    { keys: ['src' as const], frames: [1], reason: 'used' },
    { keys: ['dst' as const], reason: 'stale' },
  ];
  const r = compare('f', [otusRecord({ src: 'x' })], [tsharkFrame({ src: 'y', dst: '10.0.0.2' })], known);
  assert.equal(r.mismatches.length, 0);
  assert.deepEqual(r.stale.map((k) => k.reason), ['stale']);
});

test('corpus README decode-as rules', () => {
  const readme = [
    '- tshark needs decode-as: `-d tcp.port==6060,sip`, `-d udp.port==8472,vxlan`.',
    '| a/vx.pcap | MPL-2.0 | 1 | VXLAN (UDP 65530, decode-as) |',
  ].join('\n');
  const d = new CorpusDecodeAs(readme);
  assert.deepEqual(d.argsFor('/c', '/c/b/x.pcap'), ['-d', 'tcp.port==6060,sip', '-d', 'udp.port==8472,vxlan']);
  assert.deepEqual(d.argsFor('/c', '/c/a/vx.pcap'), ['-d', 'tcp.port==6060,sip', '-d', 'udp.port==8472,vxlan', '-d', 'udp.port==65530,vxlan']);
});

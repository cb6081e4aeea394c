// Per-layer decoder tests on annotated byte fixtures.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decoder } from '../../src/decode/decoder.js';
import { DECODE_ERROR_NAMES } from '../../src/decode/errors.js';
import { formatIpv4, formatIpv6 } from '../../src/decode/format.js';
import { TunnelType } from '../../src/decode/packet.js';
import { concat, decodeOne, decoderWith, ethernet, hex, ipv4Header, udpHeader } from '../helpers/bytes.js';

const HELLO = hex('68 65 6c 6c 6f'); // "hello"

function ipv4Udp(sport: number, dport: number, payload: Uint8Array, src?: number[], dst?: number[]): Uint8Array {
  return concat(ipv4Header({ proto: 17, payloadLen: 8 + payload.length, src, dst }), udpHeader(sport, dport, payload.length), payload);
}

describe('ethernet + ipv4 + udp', () => {
  const frame = hex(`
    00 11 22 33 44 55  66 77 88 99 aa bb  08 00   # Ethernet: dst, src, IPv4
    45 00 00 21 12 34 40 00 3f 11 00 00           # IPv4: ihl 5, total 33, id 0x1234, DF, ttl 63, UDP
    c0 a8 01 0a  c0 a8 01 14                      # 192.168.1.10 -> 192.168.1.20
    13 c4 27 10 00 0d 00 00                       # UDP 5060 -> 10000, length 13
    68 65 6c 6c 6f                                # "hello"
    00 00 00 00 00 00 00 00 00 00 00 00 00        # Ethernet padding (not payload)
  `);
  it('decodes every field', () => {
    const p = decodeOne(frame);
    assert.equal(p.error, 0);
    assert.equal(p.dstMacOff, 0);
    assert.equal(p.srcMacOff, 6);
    assert.equal(p.ipVersion, 4);
    assert.equal(formatIpv4(p.src4), '192.168.1.10');
    assert.equal(formatIpv4(p.dst4), '192.168.1.20');
    assert.equal(p.proto, 17);
    assert.equal(p.ttl, 63);
    assert.equal(p.sport, 5060);
    assert.equal(p.dport, 10000);
    assert.equal(p.payloadLen, 5);
    assert.equal(Buffer.from(p.payloadBuf.subarray(p.payloadOff, p.payloadOff + p.payloadLen)).toString(), 'hello');
    assert.equal(p.vlanCount, 0);
    assert.equal(p.tunnelType, TunnelType.None);
  });
  it('IPv4 options are skipped by the header length', () => {
    const opts = hex('01 01 01 00'); // NOP NOP NOP EOL
    const f = concat(ethernet(0x0800), ipv4Header({ proto: 17, payloadLen: 13, options: opts }), udpHeader(1, 2, 5), HELLO);
    const p = decodeOne(f);
    assert.equal(p.error, 0);
    assert.equal(p.sport, 1);
    assert.equal(p.payloadLen, 5);
  });
  it('a snaplen-cut frame decodes what is there without error', () => {
    const full = concat(ethernet(0x0800), ipv4Udp(1, 2, new Uint8Array(100)));
    const cut = full.subarray(0, 14 + 20 + 8 + 10);
    const p = decodeOne(cut, { wireLen: full.length });
    assert.equal(p.error, 0);
    assert.equal(p.payloadLen, 10);
  });
  it('total length 0 (TSO) means the rest of the frame', () => {
    const f = concat(ethernet(0x0800), ipv4Udp(1, 2, HELLO));
    f[14 + 2] = 0;
    f[14 + 3] = 0;
    const p = decodeOne(f);
    assert.equal(p.error, 0);
    assert.equal(p.payloadLen, 5);
  });
});

describe('vlan and qinq', () => {
  it('records stacked tags outermost first', () => {
    const f = concat(
      hex('00 11 22 33 44 55  66 77 88 99 aa bb  88 a8'), // Ethernet, 802.1ad
      hex('00 64 81 00'), // S-tag VID 100, then 802.1Q
      hex('a0 c8 08 00'), // C-tag PCP 5 VID 200, then IPv4
      ipv4Udp(1000, 2000, HELLO),
    );
    const p = decodeOne(f);
    assert.equal(p.error, 0);
    assert.deepEqual(Array.from(p.vlans.subarray(0, p.vlanCount)), [100, 200]);
    assert.equal(p.sport, 1000);
  });
  it('0x9100 tags are VLAN tags too', () => {
    const f = concat(ethernet(0x9100), hex('00 0a 08 00'), ipv4Udp(1, 2, HELLO));
    const p = decodeOne(f);
    assert.deepEqual(Array.from(p.vlans.subarray(0, p.vlanCount)), [10]);
  });
  it('an ARP frame is not an error and has no IP fields', () => {
    const f = concat(ethernet(0x0806), new Uint8Array(28));
    const p = decodeOne(f);
    assert.equal(p.error, 0);
    assert.equal(p.ipVersion, 0);
    assert.equal(p.payloadLen, -1);
  });
  it('802.3 with LLC/SNAP carries IPv4', () => {
    const body = ipv4Udp(7, 8, HELLO);
    const f = concat(hex('00 11 22 33 44 55  66 77 88 99 aa bb'), new Uint8Array([0, 8 + body.length]), hex('aa aa 03 00 00 00 08 00'), body);
    const p = decodeOne(f);
    assert.equal(p.sport, 7);
  });
});

describe('mpls and pppoe', () => {
  it('MPLS: two labels then IPv4', () => {
    const f = concat(ethernet(0x8847), hex('00 01 00 40  00 02 01 40'), ipv4Udp(3, 4, HELLO));
    const p = decodeOne(f);
    assert.equal(p.error, 0);
    assert.equal(p.dport, 4);
  });
  it('PPPoE session carrying IPv4', () => {
    const body = ipv4Udp(5, 6, HELLO);
    const f = concat(ethernet(0x8864), hex('11 00 00 01'), new Uint8Array([0, body.length + 2]), hex('00 21'), body);
    const p = decodeOne(f);
    assert.equal(p.sport, 5);
  });
});

const V6_SRC = '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'; // 2001:db8::1
const V6_DST = 'fe 80 00 00 00 00 00 00 02 11 22 ff fe 33 44 55'; // fe80::211:22ff:fe33:4455

function ipv6(nh: number, payload: Uint8Array, hlim = 64): Uint8Array {
  const h = concat(hex(`60 00 00 00  00 00 00 00  ${V6_SRC} ${V6_DST}`), payload);
  const v = new DataView(h.buffer);
  v.setUint16(4, payload.length);
  h[6] = nh;
  h[7] = hlim;
  return h;
}

describe('ipv6', () => {
  it('fixed header + UDP', () => {
    const p = decodeOne(concat(ethernet(0x86dd), ipv6(17, concat(udpHeader(53, 4000, 5), HELLO), 255)));
    assert.equal(p.error, 0);
    assert.equal(p.ipVersion, 6);
    assert.equal(formatIpv6(p.addrBuf, p.srcOff), '2001:db8::1');
    assert.equal(formatIpv6(p.addrBuf, p.dstOff), 'fe80::211:22ff:fe33:4455');
    assert.equal(p.ttl, 255);
    assert.equal(p.proto, 17);
    assert.equal(p.sport, 53);
    assert.equal(p.payloadLen, 5);
  });
  it('walks hop-by-hop, routing (SRH), destination options and AH', () => {
    const chain = concat(
      hex('2b 00 01 04 00 00 00 00'), // HBH -> routing, PadN
      hex('3c 02 04 01 00 00 00 00  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'), // SRH (type 4) -> dstopts, one segment
      hex('33 00 01 04 00 00 00 00'), // dest opts -> AH
      hex('11 01 00 00 00 00 00 01 00 00 00 01'), // AH (len 1 -> 12 bytes) -> UDP
      udpHeader(1, 2, 5),
      HELLO,
    );
    const p = decodeOne(concat(ethernet(0x86dd), ipv6(0, chain)));
    assert.equal(p.error, 0);
    assert.equal(p.proto, 17);
    assert.equal(p.dport, 2);
    assert.equal(p.payloadLen, 5);
  });
  it('no next header: whatever follows within the payload length is payload', () => {
    const p = decodeOne(concat(ethernet(0x86dd), ipv6(59, new Uint8Array(20))));
    assert.equal(p.error, 0);
    assert.equal(p.proto, 59);
    assert.equal(p.payloadLen, 20);
  });
  it('a mobility header ends the chain and is the payload (RFC 6275)', () => {
    const p = decodeOne(concat(ethernet(0x86dd), ipv6(135, hex('3b 00 05 00 00 00 00 00'))));
    assert.equal(p.error, 0);
    assert.equal(p.proto, 135);
    assert.equal(p.payloadLen, 8);
  });
  it('a payload length beyond the frame is counted, and what is there decoded', () => {
    const f = concat(ethernet(0x86dd), ipv6(17, concat(udpHeader(45678, 53, 5), HELLO)));
    f[14 + 5] += 1; // one byte more than the frame holds
    const p = decodeOne(f);
    assert.equal(DECODE_ERROR_NAMES[p.error], 'ipv6_bad_payload_length');
    assert.equal(p.sport, 45678);
    assert.equal(p.payloadLen, 5);
  });
  it('jumbogram: payload length from the Jumbo Payload option', () => {
    const udpLen = 70000;
    const hbh = hex('11 00 c2 04 00 01 11 78'); // -> UDP, jumbo length 70008 (8 HBH + 70000)
    const udp = new Uint8Array(udpLen);
    new DataView(udp.buffer).setUint16(0, 9);
    const p = decodeOne(concat(ethernet(0x86dd), ipv6(0, new Uint8Array(0)).subarray(0, 40), hbh, udp));
    assert.equal(p.error, 0);
    assert.equal(p.sport, 9);
    assert.equal(p.payloadLen, udpLen - 8);
  });
  it('an atomic fragment is a whole datagram', () => {
    const frag = hex('11 00 00 00 00 00 00 07'); // -> UDP, offset 0, M=0, id 7
    const p = decodeOne(concat(ethernet(0x86dd), ipv6(44, concat(frag, udpHeader(1, 2, 5), HELLO))));
    assert.equal(p.error, 0);
    assert.equal(p.fragmented, false);
    assert.equal(p.held, false);
    assert.equal(p.sport, 1);
  });
});

describe('tcp, sctp, icmp', () => {
  it('TCP ports, flags (incl. AE bit), seq/ack, options skipped', () => {
    const tcp = hex(`
      13 c4 c3 50  00 00 00 64  00 00 00 c8   # 5060 -> 50000, seq 100, ack 200
      61 18 ff ff 00 00 00 00                 # data offset 6, AE bit, PSH+ACK
      01 01 01 00                             # options: NOP NOP NOP EOL
      68 65 6c 6c 6f`);
    const f = concat(ethernet(0x0800), ipv4Header({ proto: 6, payloadLen: tcp.length }), tcp);
    const p = decodeOne(f);
    assert.equal(p.error, 0);
    assert.equal(p.sport, 5060);
    assert.equal(p.dport, 50000);
    assert.equal(p.tcpFlags, 0x118);
    assert.equal(p.tcpSeq, 100);
    assert.equal(p.tcpAck, 200);
    assert.equal(p.payloadLen, 5);
  });
  it('a truncated TCP header still reports its ports', () => {
    const p = decodeOne(concat(ethernet(0x0800), ipv4Header({ proto: 6, payloadLen: 6 }), hex('30 30 30 30 00 00')));
    assert.equal(DECODE_ERROR_NAMES[p.error], 'tcp_truncated');
    assert.equal(p.sport, 12336);
    assert.equal(p.dport, 12336);
  });
  it('SCTP ports', () => {
    const sctp = hex('0b 59 0b 59 00 00 00 01 00 00 00 00  00 01 00 04');
    const p = decodeOne(concat(ethernet(0x0800), ipv4Header({ proto: 132, payloadLen: sctp.length }), sctp));
    assert.equal(p.sport, 2905);
    assert.equal(p.payloadLen, 4);
  });
  it('ICMP echo: payload after the 8-byte header, no ports', () => {
    const icmp = concat(hex('08 00 00 00 00 01 00 01'), HELLO);
    const p = decodeOne(concat(ethernet(0x0800), ipv4Header({ proto: 1, payloadLen: icmp.length }), icmp));
    assert.equal(p.proto, 1);
    assert.equal(p.sport, -1);
    assert.equal(p.payloadLen, 5);
  });
});

describe('link types', () => {
  const body = ipv4Udp(11, 12, HELLO);
  it('Linux SLL', () => {
    const f = concat(hex('00 00 00 01 00 06 66 77 88 99 aa bb 00 00 08 00'), body);
    const p = decodeOne(f, { linkType: 113 });
    assert.equal(p.srcMacOff, 6);
    assert.equal(p.dstMacOff, -1);
    assert.equal(p.sport, 11);
  });
  it('Linux SLL2', () => {
    const f = concat(hex('08 00 00 00 00 00 00 02 00 01 00 06 66 77 88 99 aa bb 00 00'), body);
    const p = decodeOne(f, { linkType: 276 });
    assert.equal(p.srcMacOff, 12);
    assert.equal(p.sport, 11);
  });
  it('BSD NULL in either byte order, and LOOP', () => {
    assert.equal(decodeOne(concat(hex('02 00 00 00'), body), { linkType: 0 }).sport, 11);
    assert.equal(decodeOne(concat(hex('00 00 00 02'), body), { linkType: 0 }).sport, 11);
    assert.equal(decodeOne(concat(hex('00 00 00 02'), body), { linkType: 108 }).sport, 11);
    const v6 = ipv6(17, concat(udpHeader(1, 2, 0)));
    assert.equal(decodeOne(concat(hex('1e 00 00 00'), v6), { linkType: 0 }).ipVersion, 6);
  });
  it('RAW, IPV4 and IPV6 link types', () => {
    assert.equal(decodeOne(body, { linkType: 101 }).sport, 11);
    assert.equal(decodeOne(body, { linkType: 228 }).sport, 11);
    assert.equal(decodeOne(ipv6(17, udpHeader(1, 2, 0)), { linkType: 229 }).ipVersion, 6);
  });
});

describe('tunnels', () => {
  const inner = concat(ethernet(0x0800), ipv4Udp(5060, 5062, HELLO, [172, 16, 0, 1], [172, 16, 0, 2]));
  const outerUdp = (dport: number, payload: Uint8Array) => concat(ethernet(0x0800), ipv4Udp(40000, dport, payload));

  it('VXLAN: inner addresses, VNI and outer addresses', () => {
    const f = outerUdp(4789, concat(hex('08 00 00 00 00 30 39 00'), inner)); // VNI 12345
    const p = decodeOne(f, {}, decoderWith((o) => (o.tunnels.vxlan = true)));
    assert.equal(p.error, 0);
    assert.equal(p.tunnelType, TunnelType.Vxlan);
    assert.equal(p.tunnelId, 12345);
    assert.deepEqual(Array.from(p.outerSrc.subarray(0, 4)), [10, 0, 0, 1]);
    assert.equal(formatIpv4(p.src4), '172.16.0.1');
    assert.equal(p.dport, 5062);
    assert.equal(p.payloadLen, 5);
    assert.equal(p.srcMacOff, 6, 'MACs stay the outermost');
  });
  it('VXLAN off: the outer UDP packet is the result', () => {
    const p = decodeOne(outerUdp(4789, concat(hex('08 00 00 00 00 30 39 00'), inner)));
    assert.equal(p.tunnelType, TunnelType.None);
    assert.equal(p.dport, 4789);
  });
  it('VXLAN on a configured port', () => {
    const dec = decoderWith((o) => {
      o.tunnels.vxlan = true;
      o.vxlanPorts = [8472];
    });
    assert.equal(decodeOne(outerUdp(8472, concat(hex('08 00 00 00 00 00 01 00'), inner)), {}, dec).tunnelId, 1);
  });
  it('Geneve with options', () => {
    const gen = hex('02 00 65 58 00 00 2a 00  01 02 80 01 00 00 00 00'); // 2 words of options, TEB, VNI 42
    const p = decodeOne(outerUdp(6081, concat(gen, inner)), {}, decoderWith((o) => (o.tunnels.geneve = true)));
    assert.equal(p.error, 0);
    assert.equal(p.tunnelType, TunnelType.Geneve);
    assert.equal(p.tunnelId, 42);
    assert.equal(p.sport, 5060);
  });
  const greOuter = (gre: Uint8Array) => concat(ethernet(0x0800), ipv4Header({ proto: 47, payloadLen: gre.length }), gre);
  it('GRE with checksum, key and sequence carrying Ethernet (TEB)', () => {
    const gre = concat(hex('b0 00 65 58  00 00 00 00  00 00 00 2a  00 00 00 01'), inner);
    const p = decodeOne(greOuter(gre), {}, decoderWith((o) => (o.tunnels.gre = true)));
    assert.equal(p.error, 0);
    assert.equal(p.tunnelType, TunnelType.Gre);
    assert.equal(p.tunnelId, 42);
    assert.equal(p.sport, 5060);
  });
  it('GRE carrying IPv4 directly, no key', () => {
    const gre = concat(hex('00 00 08 00'), ipv4Udp(1, 2, HELLO, [1, 1, 1, 1], [2, 2, 2, 2]));
    const p = decodeOne(greOuter(gre), {}, decoderWith((o) => (o.tunnels.gre = true)));
    assert.equal(p.tunnelId, -1);
    assert.equal(formatIpv4(p.dst4), '2.2.2.2');
  });
  it('ERSPAN type I (no sequence, no header), II and III', () => {
    const dec = decoderWith((o) => (o.tunnels.erspan = true));
    const t1 = decodeOne(greOuter(concat(hex('00 00 88 be'), inner)), {}, dec);
    assert.equal(t1.tunnelType, TunnelType.Erspan);
    assert.equal(t1.sport, 5060);
    const t2 = decodeOne(greOuter(concat(hex('10 00 88 be  00 00 00 05  10 64 00 07  00 00 00 00'), inner)), {}, dec);
    assert.equal(t2.tunnelId, 7);
    assert.equal(t2.sport, 5060);
    const t3 = decodeOne(greOuter(concat(hex('10 00 22 eb  00 00 00 05  20 64 00 09  00 00 00 00  00 00 00 01'), hex('00 00 00 00 00 00 00 00'), inner)), {}, dec);
    assert.equal(t3.tunnelId, 9);
    assert.equal(t3.sport, 5060, 'the platform subheader (O bit) is skipped');
  });
  it('PPTP enhanced GRE (version 1) carrying PPP carrying IPv4', () => {
    const ppp = concat(hex('ff 03 00 21'), ipv4Udp(5060, 5060, HELLO, [192, 168, 10, 210], [192, 168, 103, 40]));
    const gre = concat(hex('30 81 88 0b'), new Uint8Array([0, ppp.length, 0, 7]), hex('00 00 00 01  00 00 00 02'), ppp); // K, S, A set
    const p = decodeOne(greOuter(gre), {}, decoderWith((o) => (o.tunnels.gre = true)));
    assert.equal(p.error, 0);
    assert.equal(p.tunnelType, TunnelType.Gre);
    assert.equal(formatIpv4(p.src4), '192.168.10.210');
    assert.equal(p.sport, 5060);
  });
  it('WCCP redirection in GRE, with and without the redirect header', () => {
    const dec = decoderWith((o) => (o.tunnels.gre = true));
    const inner4 = ipv4Udp(1, 445, HELLO, [10, 0, 0, 9], [10, 0, 0, 8]);
    assert.equal(decodeOne(greOuter(concat(hex('00 00 88 3e  00 00 00 00'), inner4)), {}, dec).dport, 445);
    assert.equal(decodeOne(greOuter(concat(hex('00 00 88 3e'), inner4)), {}, dec).dport, 445);
  });
  it('IP-in-IP: 4in4 and 6in4', () => {
    const dec = decoderWith((o) => (o.tunnels.ipip = true));
    const in4 = ipv4Udp(1, 2, HELLO, [9, 9, 9, 9], [8, 8, 8, 8]);
    const p = decodeOne(concat(ethernet(0x0800), ipv4Header({ proto: 4, payloadLen: in4.length }), in4), {}, dec);
    assert.equal(p.tunnelType, TunnelType.IpIp);
    assert.equal(formatIpv4(p.src4), '9.9.9.9');
    const in6 = ipv6(17, concat(udpHeader(3, 4, 0)));
    const q = decodeOne(concat(ethernet(0x0800), ipv4Header({ proto: 41, payloadLen: in6.length }), in6), {}, dec);
    assert.equal(q.ipVersion, 6);
    assert.equal(q.outerIpVersion, 4);
    assert.equal(q.dport, 4);
  });
});

describe('formatting', () => {
  const cases: [string, string][] = [
    ['20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01', '2001:db8::1'],
    ['00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00', '::'],
    ['00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01', '::1'],
    ['20 01 0d b8 00 00 00 01 00 00 00 00 00 00 00 01', '2001:db8:0:1::1'],
    ['20 01 0d b8 00 00 00 00 00 01 00 00 00 00 00 01', '2001:db8::1:0:0:1'],
    ['20 01 0d b8 00 01 00 00 00 01 00 01 00 01 00 01', '2001:db8:1:0:1:1:1:1'],
    ['00 00 00 00 00 00 00 00 00 00 ff ff c0 00 02 01', '::ffff:192.0.2.1'],
  ];
  for (const [bytes, text] of cases) it(`RFC 5952: ${text}`, () => assert.equal(formatIpv6(hex(bytes), 0), text));
});

describe('decoder reuse', () => {
  it('fields of a previous frame never leak into the next', () => {
    const dec = new Decoder();
    decodeOne(concat(ethernet(0x8100), hex('00 05 08 00'), ipv4Udp(1, 2, HELLO)), {}, dec);
    const p = decodeOne(concat(ethernet(0x0806), new Uint8Array(28)), {}, dec);
    assert.equal(p.vlanCount, 0);
    assert.equal(p.ipVersion, 0);
    assert.equal(p.sport, -1);
    assert.equal(p.proto, -1);
    assert.equal(dec.stats.frames, 2);
  });
});

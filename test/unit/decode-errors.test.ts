// One test per decode-error code: a malformed frame that must end in exactly
// that code, counted once, with no exception.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decoder } from '../../src/decode/decoder.js';
import { DECODE_ERROR_NAMES } from '../../src/decode/errors.js';
import { concat, decodeOne, decoderWith, ethernet, hex, ipv4Header, udpHeader } from '../helpers/bytes.js';

const HELLO = hex('68 65 6c 6c 6f');
const eth4 = (ip: Uint8Array) => concat(ethernet(0x0800), ip);
const ip4 = (proto: number, payload: Uint8Array, extra: Partial<Parameters<typeof ipv4Header>[0]> = {}) =>
  concat(ipv4Header({ proto, payloadLen: payload.length, ...extra }), payload);
const udp4 = (dport: number, payload: Uint8Array) => ip4(17, concat(udpHeader(40000, dport, payload.length), payload));

function ipv6(nh: number, payload: Uint8Array, plen = payload.length): Uint8Array {
  const h = concat(new Uint8Array(40), payload);
  h[0] = 0x60;
  new DataView(h.buffer).setUint16(4, plen);
  h[6] = nh;
  h[7] = 64;
  return h;
}

/** IPv4 fragment of `payload` (bytes of the datagram after the header). */
function frag4(payload: Uint8Array, offset: number, more: boolean, id = 77, proto = 17): Uint8Array {
  return ip4(proto, payload, { id, flagsFrag: (more ? 0x2000 : 0) | (offset >> 3) });
}

interface Case {
  name: string;
  /** Frames fed in order; the last one must carry the error. */
  frames: Uint8Array[];
  linkType?: number;
  wireLen?: number;
  decoder?: () => Decoder;
}

const on = (k: 'vxlan' | 'gre' | 'erspan' | 'geneve' | 'ipip') => () => decoderWith((o) => (o.tunnels[k] = true));

const cases: Case[] = [
  { name: 'unsupported_linktype', frames: [new Uint8Array(40)], linkType: 147 },
  { name: 'link_truncated', frames: [hex('00 11 22 33 44 55 66 77 88 99')] },
  { name: 'vlan_truncated', frames: [concat(ethernet(0x8100), hex('00 01'))] },
  { name: 'vlan_too_deep', frames: [concat(ethernet(0x8100), ...Array.from({ length: 9 }, () => hex('00 01 81 00')), udp4(1, HELLO))] },
  { name: 'mpls_truncated', frames: [concat(ethernet(0x8847), hex('00 01'))] },
  { name: 'mpls_too_deep', frames: [concat(ethernet(0x8847), ...Array.from({ length: 9 }, () => hex('00 01 00 40')), udp4(1, HELLO))] },
  { name: 'pppoe_truncated', frames: [concat(ethernet(0x8864), hex('11 00 00 01'))] },
  { name: 'ipv4_truncated', frames: [eth4(hex('45 00 00 14 00 00 00 00 40'))] },
  { name: 'ipv4_bad_version', frames: [eth4(concat(hex('55'), new Uint8Array(19)))] },
  { name: 'ipv4_bad_header_length', frames: [eth4(concat(hex('44'), new Uint8Array(19)))] },
  { name: 'ipv4_bad_total_length', frames: [(() => { const f = eth4(udp4(1, HELLO)); f[14 + 3] = 10; return f; })()] },
  { name: 'ipv6_truncated', frames: [concat(ethernet(0x86dd), hex('60 00 00 00'))] },
  { name: 'ipv6_bad_version', frames: [concat(ethernet(0x86dd), (() => { const h = ipv6(59, new Uint8Array(0)); h[0] = 0x40; return h; })())] },
  { name: 'ipv6_bad_payload_length', frames: [concat(ethernet(0x86dd), ipv6(17, new Uint8Array(10), 100))] },
  { name: 'ipv6_ext_truncated', frames: [concat(ethernet(0x86dd), ipv6(0, hex('11 00 00 00')))] },
  { name: 'ipv6_ext_chain_too_long', frames: [concat(ethernet(0x86dd), ipv6(60, concat(...Array.from({ length: 17 }, () => hex('3c 00 01 04 00 00 00 00')))))] },
  { name: 'ipv6_bad_jumbo', frames: [concat(ethernet(0x86dd), ipv6(0, hex('11 00 01 04 00 00 00 00'), 0))] },
  { name: 'udp_truncated', frames: [eth4(ip4(17, hex('00 01 00 02')))] },
  { name: 'udp_bad_length', frames: [eth4(ip4(17, hex('00 01 00 02 00 04 00 00')))] },
  { name: 'tcp_truncated', frames: [eth4(ip4(6, new Uint8Array(10)))] },
  { name: 'tcp_bad_data_offset', frames: [eth4(ip4(6, concat(new Uint8Array(12), hex('40 02'), new Uint8Array(6))))] },
  { name: 'sctp_truncated', frames: [eth4(ip4(132, new Uint8Array(8)))] },
  { name: 'icmp_truncated', frames: [eth4(ip4(1, hex('08 00 00 00')))] },
  { name: 'gre_truncated', frames: [eth4(ip4(47, hex('20 00 65 58')))], decoder: on('gre') },
  { name: 'gre_unsupported', frames: [eth4(ip4(47, hex('40 00 08 00 00 00 00 00')))], decoder: on('gre') },
  { name: 'erspan_truncated', frames: [eth4(ip4(47, hex('10 00 88 be 00 00 00 01 10 00')))], decoder: on('erspan') },
  { name: 'vxlan_truncated', frames: [eth4(udp4(4789, hex('08 00 00 00')))], decoder: on('vxlan') },
  { name: 'geneve_truncated', frames: [eth4(udp4(6081, hex('00 00 65 58')))], decoder: on('geneve') },
  { name: 'geneve_bad_version', frames: [eth4(udp4(6081, hex('40 00 65 58 00 00 01 00')))], decoder: on('geneve') },
  { name: 'tunnel_too_deep', frames: [eth4([1, 2, 3, 4, 5].reduce((inner) => ip4(4, inner), udp4(1, HELLO)))], decoder: on('ipip') },
  { name: 'frag_bad_length', frames: [eth4(frag4(new Uint8Array(7), 0, true))] },
  { name: 'frag_too_large', frames: [eth4(frag4(new Uint8Array(100), 65512, false))] },
  { name: 'frag_overlap', frames: [eth4(frag4(new Uint8Array(16), 0, true)), eth4(frag4(new Uint8Array(16).fill(1), 8, true))] },
  { name: 'frag_inconsistent', frames: [eth4(frag4(new Uint8Array(8), 8, false)), eth4(frag4(new Uint8Array(8), 16, true))] },
  {
    name: 'frag_too_many',
    frames: [0, 8, 16].map((o) => eth4(frag4(new Uint8Array(8), o, true))),
    decoder: () => decoderWith((o) => (o.reassembly.maxFragments = 2)),
  },
  { name: 'frag_truncated', frames: [eth4(frag4(new Uint8Array(64), 0, true)).subarray(0, 14 + 20 + 16)], wireLen: 14 + 20 + 64 },
  { name: 'frag_too_deep', frames: nestedFragments(4), decoder: on('ipip') },
];

/**
 * Frames that complete `levels` nested reassemblies in their last frame: each
 * datagram's second fragment travels inside the datagram one level out (IP-in-IP).
 */
function nestedFragments(levels: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let inner = udp4(1, new Uint8Array(16)); // the innermost datagram, fragmented below
  let proto = 17;
  for (let level = 0; level < levels; level++) {
    const body = inner.subarray(20);
    const id = 100 + level;
    frames.unshift(eth4(frag4(body.subarray(0, 8), 0, true, id, proto))); // first half arrives alone, early
    inner = ip4(4, frag4(body.subarray(8), 8, false, id, proto)); // second half rides one level out
    proto = 4;
  }
  frames.push(eth4(inner));
  return frames;
}

describe('decode-error codes', () => {
  it('every code has a case below', () => {
    const covered = new Set(cases.map((c) => c.name));
    const missing = DECODE_ERROR_NAMES.slice(1).filter((n) => !covered.has(n));
    assert.deepEqual(missing, []);
  });
  for (const c of cases) {
    it(c.name, () => {
      const dec = c.decoder?.() ?? decoderWith(() => {});
      let p = decodeOne(c.frames[0], { linkType: c.linkType, wireLen: c.frames.length === 1 ? c.wireLen : undefined }, dec);
      for (let i = 1; i < c.frames.length; i++) {
        assert.equal(p.error, 0, `frame ${i} of ${c.frames.length} must not fail yet (got ${DECODE_ERROR_NAMES[p.error]})`);
        p = decodeOne(c.frames[i], { linkType: c.linkType, wireLen: i === c.frames.length - 1 ? c.wireLen : undefined }, dec);
      }
      assert.equal(DECODE_ERROR_NAMES[p.error], c.name);
      const code = DECODE_ERROR_NAMES.indexOf(c.name);
      assert.equal(dec.stats.errors[code], 1, 'counted once');
    });
  }
});

// Task filters: structured filters become the libpcap text we expect, that
// text passes exactly the intended frames of a mixed capture (fragments of
// matching hosts included) by libpcap's own offline filter, and the kernel,
// running our compiled program on a veth, passes exactly the frames that
// `tcpdump -r FILE -w - FILTER` passes.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AfPacketCapturer } from '../../src/capture/afpacket.js';
import { defaultCaptureOptions } from '../../src/capture/capturer.js';
import { compileFilter, filterText, type StructuredFilter, structuredFilterText } from '../../src/capture/filter.js';
import { OtusError } from '../../src/util/errors.js';
import { hex, ipv4Frame, ipv6Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tcpdumpFilter, tempDir, type VethHost, waitFor, writePcap } from '../helpers/live.js';

const skip = liveSkipReason();

/** An IPv4 fragment with `len` payload bytes at byte offset `off` (no transport header unless off = 0 and the caller put one in). */
function ipv4Fragment(src: number[], dst: number[], id: number, off: number, more: boolean, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(14 + 20 + payload.length);
  const v = new DataView(b.buffer);
  b.set([2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa], 0);
  v.setUint16(12, 0x0800);
  b[14] = 0x45;
  v.setUint16(16, 20 + payload.length);
  v.setUint16(18, id);
  v.setUint16(20, ((more ? 1 : 0) << 13) | (off >> 3));
  b[22] = 64;
  b[23] = 17;
  b.set(src, 26);
  b.set(dst, 30);
  b.set(payload, 34);
  return b;
}

/** IPv6 + Fragment header (next header UDP) from 2001::1 to 2001::2. */
function ipv6Fragment(off: number, more: boolean, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(14 + 40 + 8 + payload.length);
  const v = new DataView(b.buffer);
  b.set([2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa], 0);
  v.setUint16(12, 0x86dd);
  b[14] = 0x60;
  v.setUint16(18, 8 + payload.length);
  b[20] = 44;
  b[21] = 64;
  b[22] = 0x20;
  b[23] = 0x01;
  b[37] = 1;
  b[38] = 0x20;
  b[39] = 0x01;
  b[53] = 2;
  b[54] = 17;
  v.setUint16(56, (off & 0xfff8) | (more ? 1 : 0));
  v.setUint32(58, 0x1234);
  b.set(payload, 62);
  return b;
}

const A = [10, 0, 1, 5];
const B = [10, 0, 2, 9];
const X = [10, 7, 7, 7];

/** The mixed capture; `name` says which frame is which. */
function corpus(): { name: string; bytes: Uint8Array }[] {
  const udpHdr = new Uint8Array(8 + 1472);
  new DataView(udpHdr.buffer).setUint16(0, 5060);
  new DataView(udpHdr.buffer).setUint16(2, 5060);
  new DataView(udpHdr.buffer).setUint16(4, 8 + 1472 + 300);
  const tail = new Uint8Array(300).fill(0x41);
  const arp = new Uint8Array(42);
  arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0xa, 0x08, 0x06], 0);
  return [
    { name: 'udp A>B 5060', bytes: ipv4Frame({ src: A, dst: B, sport: 5060, dport: 5060 }, 200, 1) },
    { name: 'udp B>A 5060', bytes: ipv4Frame({ src: B, dst: A, sport: 5060, dport: 5060 }, 200, 2) },
    { name: 'tcp A>B 5060', bytes: ipv4Frame({ src: A, dst: B, sport: 40000, dport: 5060, proto: 6 }, 100, 3) },
    { name: 'udp A>B 15000', bytes: ipv4Frame({ src: A, dst: B, sport: 15000, dport: 15002 }, 160, 4) },
    { name: 'udp A>B 9999', bytes: ipv4Frame({ src: A, dst: B, sport: 9999, dport: 9998 }, 160, 5) },
    { name: 'udp X>B 5060', bytes: ipv4Frame({ src: X, dst: B, sport: 5060, dport: 5060 }, 160, 6) },
    { name: 'frag1 A>B 5060', bytes: ipv4Fragment(A, B, 77, 0, true, udpHdr) },
    { name: 'frag2 A>B', bytes: ipv4Fragment(A, B, 77, 1480, false, tail) },
    { name: 'frag2 X>B', bytes: ipv4Fragment(X, B, 78, 1480, false, tail) },
    { name: 'udp6 5060', bytes: ipv6Frame(5060, 5060, 100, 7) },
    { name: 'frag6 first', bytes: ipv6Fragment(0, true, udpHdr.subarray(0, 1000)) },
    { name: 'frag6 later', bytes: ipv6Fragment(1000, false, tail) },
    { name: 'arp', bytes: arp },
  ];
}

const SIP: StructuredFilter = { src_ip: ['10.0.1.0/24'], dst_ip: ['10.0.2.0/24'], ports: [5060, 5061], port_range: '10000-20000', protocol: 'udp' };

const CASES: { filter: string | StructuredFilter; expect: string[] }[] = [
  { filter: 'udp port 5060', expect: ['udp A>B 5060', 'udp B>A 5060', 'udp X>B 5060', 'frag1 A>B 5060', 'udp6 5060'] },
  { filter: SIP, expect: ['udp A>B 5060', 'udp A>B 15000', 'frag1 A>B 5060', 'frag2 A>B'] },
  { filter: { ports: [5060], protocol: 'any' }, expect: ['udp A>B 5060', 'udp B>A 5060', 'tcp A>B 5060', 'udp X>B 5060', 'frag1 A>B 5060', 'frag2 A>B', 'frag2 X>B', 'udp6 5060', 'frag6 first', 'frag6 later'] },
  { filter: { src_ip: ['2001::/16'], ports: [5060], protocol: 'udp' }, expect: ['udp6 5060', 'frag6 first', 'frag6 later'] },
  { filter: { protocol: 'tcp' }, expect: ['tcp A>B 5060'] },
  { filter: { dst_ip: ['10.0.2.9'] }, expect: ['udp A>B 5060', 'tcp A>B 5060', 'udp A>B 15000', 'udp A>B 9999', 'udp X>B 5060', 'frag1 A>B 5060', 'frag2 A>B', 'frag2 X>B'] },
];

const label = (f: string | StructuredFilter): string => (typeof f === 'string' ? f : JSON.stringify(f));

describe('structured filters to BPF text', () => {
  test('text for a SIP task filter, fragments of the matching hosts included', () => {
    assert.equal(
      structuredFilterText(SIP),
      '(src net 10.0.1.0/24 and dst net 10.0.2.0/24 and udp and (port 5060 or port 5061 or portrange 10000-20000))' +
        ' or (ip[6:2] & 0x1fff != 0 and ip[9] = 17 and src net 10.0.1.0/24 and dst net 10.0.2.0/24)',
    );
    assert.equal(structuredFilterText({}), '');
    assert.equal(structuredFilterText({ protocol: 'any' }), '');
    assert.equal(structuredFilterText({ src_ip: ['10.0.0.0/8', '192.168.1.1'] }), '(src net 10.0.0.0/8 or src net 192.168.1.1/32)');
    assert.equal(
      structuredFilterText({ ports: [53] }),
      '(port 53) or (ip[6:2] & 0x1fff != 0) or (ip6[6] = 44)',
    );
  });

  test('bad structured fields are coded errors naming the field', () => {
    const bad: [StructuredFilter, RegExp][] = [
      [{ src_ip: ['10.0.0.0/33'] }, /filter\.src_ip: "10.0.0.0\/33"/],
      [{ dst_ip: ['example.com'] }, /filter\.dst_ip/],
      [{ ports: [70000] }, /filter\.ports/],
      [{ port_range: '20-10' }, /filter\.port_range/],
      [{ protocol: 'icmp' as 'udp' }, /filter\.protocol/],
      [{ proto: 'udp' } as StructuredFilter, /filter\.proto: unknown key/],
    ];
    for (const [f, re] of bad) assert.throws(() => structuredFilterText(f), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_BAD_ARGUMENT' && re.test(e.message), JSON.stringify(f));
  });

  test('bad filter text: OTUS_ERR_FILTER with the filter and libpcap\'s reason', () => {
    assert.throws(
      () => compileFilter('udp prot 5060', 262144, 1),
      (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_FILTER' && e.message.includes('"udp prot 5060"') && /syntax error|parse/.test(e.message),
    );
    const prog = compileFilter('udp port 5060', 200, 1);
    assert.equal(prog.length % 8, 0);
    // The last instruction of an accepting path returns the snaplen.
    const rets: number[] = [];
    for (let i = 0; i < prog.length; i += 8) if ((prog.readUInt16LE(i) & 0x07) === 0x06) rets.push(prog.readUInt32LE(i + 4));
    assert.ok(rets.includes(200) && rets.includes(0), `ret values ${rets}`);
  });

  test('libpcap offline filtering of the generated text passes exactly the intended frames', { skip: skip?.startsWith('needs tcpdump') ? skip : false }, () => {
    const tmp = tempDir();
    try {
      const frames = corpus();
      const file = join(tmp.dir, 'mixed.pcap');
      writePcap(file, frames.map((f) => f.bytes));
      const names = new Map(frames.map((f) => [hex(f.bytes), f.name]));
      for (const c of CASES) {
        const passed = tcpdumpFilter(file, filterText(c.filter), tmp.dir).map((b) => names.get(hex(b)));
        assert.deepEqual(passed, c.expect, label(c.filter));
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe('kernel filtering on veth matches libpcap offline filtering', { skip: skip ?? false }, () => {
  let host: VethHost;
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    if (skip) return;
    removeStaleNamespaces();
    host = makeVethHost();
    tmp = tempDir();
  });
  after(() => {
    host?.destroy();
    tmp?.cleanup();
  });

  test('each filter passes and rejects exactly what tcpdump -r passes and rejects', async () => {
    const frames = corpus();
    const file = join(tmp.dir, 'mixed.pcap');
    writePcap(file, frames.map((f) => f.bytes));
    for (const c of CASES) {
      const oracle = tcpdumpFilter(file, filterText(c.filter), tmp.dir).map(hex);
      const cap = new AfPacketCapturer({ ...defaultCaptureOptions(host.capIf), filter: c.filter, blockSize: 1 << 16, blockCount: 8 });
      const got: string[] = [];
      cap.capture(0).start({ frame: (buf, _v, off, caplen) => void got.push(hex(buf.subarray(off, off + caplen))) });
      try {
        host.replay(file);
        await waitFor(() => got.length >= oracle.length, 5000);
        await new Promise((r) => setTimeout(r, 150)); // anything the filter wrongly passes arrives by now
        assert.deepEqual(got, oracle, label(c.filter));
        assert.ok(got.length > 0 && got.length < frames.length, `${label(c.filter)} both passes and rejects`);
      } finally {
        cap.stop();
      }
    }
  });
});

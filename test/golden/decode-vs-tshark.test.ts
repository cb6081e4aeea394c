// Golden test: `otus decode --tunnels all` against tshark, frame by frame,
// on real captures in test/fixtures/captures/ (provenance in PROVENANCE.md
// there). The comparison rules are in compare.ts; what tshark is expected to
// say is worked out in tshark.ts. Skips, with the reason printed, when tshark
// is not installed.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatMismatches, type KnownDifference } from './compare.js';
import { REPO_ROOT, checkFile, type CheckResult } from './harness.js';
import { tsharkVersion } from './tshark.js';

const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'captures');

interface Fixture {
  file: string;
  /** tshark decode-as arguments. */
  decodeAs?: string[];
  known?: KnownDifference[];
}

const FIXTURES: Fixture[] = [
  // Link layers
  { file: 'packetnet--802.1q_vlan_ipv4_tcp.pcap' }, // 802.1Q, TCP
  { file: 'packetnet--802.1ad_vlan_ipv4.pcap' }, // 802.1ad + 802.1Q
  { file: 'zeek--http-qinq-0.pcap' }, // two 0x8100 tags, TCP
  { file: 'zeek--mpls-in-vlan.pcap' }, // 802.1Q then MPLS
  { file: 'zeek--mixed-vlan-mpls.pcap' }, // VLAN and MPLS mixed
  { file: 'gopacket--linux_sll_oversized_addr.pcapng' }, // Linux SLL, address longer than 8 bytes
  { file: 'suricata-verify--decode-sll2-02-frames1-7.pcap' }, // Linux SLL2
  { file: 'zeek--dns-svcb.pcap' }, // BSD NULL, IPv4
  { file: 'gopacket--test_loopback.pcap' }, // BSD NULL, IPv6
  { file: 'tcpdump--LINKTYPE_RAW_ipv4.pcap' },
  { file: 'tcpdump--LINKTYPE_RAW_ipv6.pcap' },
  { file: 'tcpdump--LINKTYPE_IPV4.pcap' },
  { file: 'tcpdump--LINKTYPE_IPV6.pcap' },
  // IP options and IPv6 extension headers
  { file: 'zeek--dns-mdns.pcap' }, // IPv4 router-alert option, IPv6 hop-by-hop, UDP, IGMP, ICMPv6
  { file: 'PcapPlusPlus--ipv6_options.pcap' }, // HBH, dest opts, routing type 0, AH
  { file: 'tcpdump--ipv6-srh-ext-header.pcap' }, // segment routing header, IPv6 in IPv6
  { file: 'zeek--ipv6_zero_len_ah.pcap' }, // AH, and an ICMPv6 error quoting IPv6+AH
  { file: 'PcapPlusPlus--ip-frag-sctp-icmp.pcap' }, // SCTP, UDP, TCP, ICMP errors quoting SCTP
  // IPv4 fragments
  { file: 'PcapPlusPlus--IPv4Frag.pcap' },
  { file: 'PcapPlusPlus--frag_with_padding.pcap' }, // 802.1Q, Ethernet padding after fragments
  { file: 'zeek--ipv4-fragmented-syn.pcap' },
  { file: 'suricata-verify--frag-eth-vlan-ip-tcp-syn.pcap' },
  {
    file: 'zeek--ipv4-fragmented-2.pcap',
    known: [{
      keys: ['reassembly'], frames: [1, 3],
      reason: 'non-last fragments of 18 bytes: otus rejects them (frag_bad_length; RFC 791 fragments carry multiples of 8 octets), tshark holds them',
    }],
  },
  {
    file: 'zeek--ipv4-fragmented-4.pcap',
    known: [{
      keys: ['fragmented', 'sport', 'dport', 'tcp_flags', 'payload_len'], frames: [5],
      reason: 'frame 5 overlaps frame 3 (bytes 48-71): otus drops the datagram (frag_overlap), tshark reassembles with the later copy',
    }],
  },
  // IPv6 fragments
  { file: 'PcapPlusPlus--ipv6_opt_fragments.pcap' },
  { file: 'zeek--ipv6-fragmented-dns.pcap' },
  { file: 'suricata-verify--frag-ip-tcp.pcap' }, // LINKTYPE_IPV6
  { file: 'suricata-verify--frag-eth-vlan-ipv6-tcp.pcap' },
  // Tunnels
  { file: 'tcpdump--vxlan.pcap' },
  { file: 'tcpdump--vxlan_port_8472.pcap', decodeAs: ['-d', 'udp.port==8472,vxlan'] }, // otus: --vxlan-ports 4789,8472
  { file: 'packetnet--vxlan_custom_port.pcap', decodeAs: ['-d', 'udp.port==65530,vxlan'] },
  { file: 'zeek--tunnels-geneve.pcap' },
  { file: 'tcpdump--geneve-gcp.pcap' },
  { file: 'packetnet--gre_all_options.pcap' }, // checksum, key, sequence
  { file: 'packetnet--gre_nvgre.pcap' }, // transparent Ethernet bridging with key
  { file: 'packetnet--gre_ipv6.pcap' },
  { file: 'zeek--tunnels-gre-sample.pcap' }, // GRE, and ICMP errors quoting UDP
  { file: 'zeek--erspanI.pcap' },
  { file: 'zeek--erspanII.pcap' },
  { file: 'tcpdump--erspan-type-ii-1.pcap' },
  { file: 'zeek--erspanIII.pcap' },
  { file: 'zeek--tunnels-gre-erspan3-dot1q.pcap' }, // ERSPAN III with an inner 802.1Q tag
  { file: 'zeek--tunnels-4in4.pcap' },
  { file: 'zeek--tunnels-4in6.pcap' },
  { file: 'zeek--tunnels-6in4.pcap' },
  { file: 'zeek--tunnels-6in6.pcap' },
];

/** Runs `fn` over `items`, at most `width` at a time, keeping order. */
async function pool<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

test('otus decode agrees with tshark on the capture fixtures', async (t) => {
  const version = tsharkVersion();
  if (version === null) {
    t.skip('tshark not installed: nothing to cross-check otus decode against (Debian/Ubuntu: apt-get install tshark)');
    return;
  }
  t.diagnostic(version);

  // Every capture copied in (named SOURCE--NAME) is compared, whether or not
  // the table above lists it: a parser's fixture is checked at L2–L4 too.
  // The table only adds decode-as rules and known differences.
  const copied = readdirSync(FIXTURES_DIR).filter((f) => f.includes('--') && /\.(pcap|pcapng|cap)$/.test(f)).sort();
  const byName = new Map(FIXTURES.map((f) => [f.file, f]));
  const all: Fixture[] = copied.map((file) => byName.get(file) ?? { file });
  await t.test('every fixture in the table exists', () => {
    assert.deepEqual(FIXTURES.map((f) => f.file).filter((f) => !existsSync(join(FIXTURES_DIR, f))), [], 'fixtures listed but missing');
  });

  const results: (CheckResult | Error)[] = await pool(all, 4, (f) =>
    checkFile(join(FIXTURES_DIR, f.file), { decodeAs: f.decodeAs ?? [], known: f.known ?? [] }).catch((e: Error) => e),
  );

  for (let i = 0; i < all.length; i++) {
    const f = all[i]!;
    const r = results[i]!;
    await t.test(f.file, () => {
      if (r instanceof Error) throw r;
      assert.ok(r.frames > 0, 'tshark read no frames');
      assert.equal(r.otus.length, r.frames, 'otus and tshark see different frame counts');
      assert.ok(r.compared > r.frames, 'next to nothing was compared');
      assert.equal(r.mismatches.length, 0, `otus and tshark differ:\n${formatMismatches(r.mismatches)}`);
      assert.deepEqual(r.stale.map((k) => k.reason), [], 'known differences that no longer occur: delete them');
    });
  }

  // The fixtures must exercise what they claim to, by tshark's own account:
  // a broken walk in tshark.ts that expects null everywhere would otherwise
  // agree with a decoder that decodes nothing.
  await t.test('the fixtures cover the layers the decoder claims', () => {
    const seen = new Set<string>();
    for (const r of results) {
      if (r instanceof Error) continue;
      for (const fr of r.tshark) {
        const e = fr.exp;
        if (typeof e['tunnel.type'] === 'string') seen.add(`tunnel:${e['tunnel.type']}`);
        if (typeof e.proto === 'number') seen.add(`proto:${e.proto}`);
        if (e.ip_version === 4 || e.ip_version === 6) seen.add(`ip:${e.ip_version}`);
        if (Array.isArray(e.vlans) && e.vlans.length >= 2) seen.add('vlans:2');
        if (e.fragmented === true) seen.add(`fragmented:${e.ip_version}`);
        if (e.reassembly === 'held') seen.add(`held:${e.ip_version}`);
        for (const layer of fr.path.split(':')) seen.add(`layer:${layer}`);
      }
    }
    const want = [
      'tunnel:vxlan', 'tunnel:geneve', 'tunnel:gre', 'tunnel:erspan', 'tunnel:ipip',
      'proto:6', 'proto:17', 'proto:132', 'proto:1', 'proto:58', 'ip:4', 'ip:6', 'vlans:2',
      'fragmented:4', 'fragmented:6', 'held:4', 'held:6',
      'layer:eth', 'layer:vlan', 'layer:ieee8021ad', 'layer:mpls', 'layer:sll', 'layer:null', 'layer:raw',
    ];
    assert.deepEqual(want.filter((w) => !seen.has(w)), [], 'not covered by any fixture');
  });
});

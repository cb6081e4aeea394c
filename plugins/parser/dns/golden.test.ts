// Golden test: `otus replay` with the dns parser over real captures
// (test/fixtures/captures/, provenance in PROVENANCE.md there), every record
// cross-checked with tshark's dns.id, dns.flags.response, dns.qry.name,
// dns.qry.type and dns.flags.rcode. Every DNS message tshark sees on port 53
// must have a record with the same labels, and every record a tshark
// message, except the listed differences (each with the reason tshark is
// judged wrong, or the two legitimately differ). Skips, saying why, without tshark.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, byKey, recordKey, replay, tsharkFields, tsharkMissing, type JsonRecord } from '../../../test/helpers/parser-golden.js';
import { TYPE_NAME } from './names.js';

const FILES = [
  'tcpdump--dns_udp.pcap', 'tcpdump--dnssec.pcap', 'tcpdump--edns-opts.pcap', 'tcpdump--dns-uri.pcap', 'tcpdump--dns-badcookie.pcap',
  'tcpdump--dns_tcp.pcap', 'tcpdump--dns-badlabel.pcap', 'tcpdump--dns-badvers.pcap',
  'zeek--dns-caa.pcap', 'zeek--dns-https.pcap', 'zeek--dns-txt-multiple.pcap', 'zeek--dns-zero-RRs.pcap', 'zeek--dns-tsig.pcap',
  'zeek--dns-edns-cookie.pcap', 'zeek--dns-two-responses.pcap', 'zeek--dns-naptr.pcap', 'zeek--dns-max-compression-depth.pcap',
  'zeek--dns-invalid-names.pcap', 'zeek--dns-corrupt.pcap', 'zeek--dns-svcb-alpn-malformed-len-too-long.pcap', 'zeek--dns-long-connection.pcap',
  'zeek--dns-sshfp-trunc.pcap', 'zeek--dns-dynamic-update.pcap', 'zeek--dns-hinfo.pcap', 'zeek--dns-loc-29-trunc.pcap',
  'zeek--dns_extended_rcode.pcap', 'zeek--dns-edns-bad-length.pcap',
  'PcapPlusPlus--DnsPackets.pcap', 'PcapPlusPlus--dns_over_tcp.pcapng', 'PcapPlusPlus--DnsTooManyResources.pcap',
  'PcapPlusPlus--dns_stack_overflow.pcap', 'gopacket--test_dns.pcap',
];

interface Known {
  file: string;
  frame: number;
  /** Label keys that differ, or 'extra' (otus has a record tshark has no message for). */
  keys: string[] | 'extra';
  /** For 'extra': the record's join key (capture time in µs, ports). */
  recordKey?: string;
  reason: string;
}

const KNOWN: Known[] = [
  {
    file: 'tcpdump--dns-badlabel.pcap', frame: 1, keys: ['dns.query', 'dns.type'],
    reason: 'the question name is longer than 255 octets (RFC 1035 §3.1): tshark shows the placeholder "<Name too long>" as the name and a type read after it; otus sets no query/type label and the payload says malformed: name_too_long',
  },
  {
    file: 'zeek--dns-invalid-names.pcap', frame: 2, keys: ['dns.query', 'dns.type'],
    reason: 'the question name is a compression loop: tshark shows the placeholder "<Name contains a pointer that loops>"; otus sets no query/type label (payload: malformed: name_loop)',
  },
  {
    file: 'PcapPlusPlus--dns_over_tcp.pcapng', frame: 4, keys: 'extra', recordKey: '1614156838745364:53:56752',
    reason: 'frame 1 has timestamp 0 (1970) and frame 4 repeats its bytes 51 years later: the reassembler timed the idle connection out (120 s of capture time) and joined the new one mid-stream, so the response is output again; tshark never times out and calls frame 4 a retransmission',
  },
];

const TASK = `task:
  id: dns-golden
  parsers:
    - plugin: dns
  unmatched_policy: drop
`;

const skip = tsharkMissing();

test('dns labels agree with tshark on every DNS message of the fixtures', { skip: skip ?? false }, () => {
  const paths = FILES.map((f) => join(FIXTURES, f));
  const { records, stats } = replay(TASK, paths);
  const recs = byKey(records);
  const used = new Set<JsonRecord>();
  const problems: string[] = [];
  const knownHit = new Set<Known>();
  let messages = 0;
  for (let i = 0; i < FILES.length; i++) {
    const file = FILES[i];
    const rows = tsharkFields(paths[i], 'dns && (udp.port == 53 || tcp.port == 53)', ['dns.id', 'dns.flags.response', 'dns.qry.name', 'dns.qry.type', 'dns.flags.rcode']);
    for (const row of rows) {
      messages++;
      const [id, resp, qname, qtype, rcode] = row.f;
      const rec = recs.get(row.key)?.find((r) => !used.has(r) && r.labels['dns.id'] === String(Number(id)));
      if (!rec) {
        problems.push(`${file} frame ${row.frame}: no record (tshark id ${id}, ${qname})`);
        continue;
      }
      used.add(rec);
      const qr = resp === 'True' || resp === '1';
      const exp: Record<string, string | undefined> = {
        'dns.id': String(Number(id)),
        'dns.qr': qr ? '1' : '0',
        'dns.query': qname === '' ? undefined : qname === '<Root>' ? '.' : qname,
        'dns.type': qtype === '' ? undefined : TYPE_NAME.get(Number(qtype)) || `TYPE${qtype}`,
        // tshark shows the rcode field of responses only.
        'dns.rcode': qr ? rcode : rec.labels['dns.rcode'],
      };
      const diff = Object.keys(exp).filter((k) => rec.labels[k] !== exp[k]);
      if (diff.length === 0) continue;
      const k = KNOWN.find((x) => x.file === file && x.frame === row.frame && Array.isArray(x.keys) && x.keys.join() === diff.join());
      if (k) knownHit.add(k);
      else problems.push(`${file} frame ${row.frame}: ${diff.map((d) => `${d} otus=${rec.labels[d]} tshark=${exp[d]}`).join(', ')}`);
    }
  }
  for (const r of records) {
    if (used.has(r)) continue;
    const k = KNOWN.find((x) => x.keys === 'extra' && x.recordKey === recordKey(r));
    if (k) knownHit.add(k);
    else problems.push(`extra record ${recordKey(r)} ${JSON.stringify(r.labels)}`);
  }
  assert.deepEqual(problems, []);
  assert.equal(knownHit.size, KNOWN.length, 'every listed difference still happens (else drop it from the list)');
  assert.ok(messages > 500, `${messages} tshark messages`);
  assert.equal(stats.parsers.dns.records, records.length);
  // The parser's own counters reach the summary: the malformed fixtures, by reason.
  const own = stats.parsers.dns.counters;
  assert.equal(own.records, records.length);
  assert.ok(own.malformed.name_loop >= 1 && own.malformed.name_too_long >= 1, JSON.stringify(own));
});

test('dns payloads: the sections of real messages (HTTPS, CAA, NAPTR, TSIG, EDNS cookie)', { skip: false }, () => {
  const { records } = replay(TASK, ['zeek--dns-https.pcap', 'zeek--dns-caa.pcap', 'zeek--dns-naptr.pcap', 'zeek--dns-tsig.pcap', 'tcpdump--dns-badcookie.pcap'].map((f) => join(FIXTURES, f)));
  const https = records.find((r) => r.labels['dns.type'] === 'HTTPS' && r.labels['dns.qr'] === '1')!;
  assert.deepEqual(https.payload.answers[0].params.alpn, ['h3', 'h3-29', 'h3-28', 'h3-27', 'h2']);
  assert.deepEqual(https.payload.answers[0].params.ipv4hint, ['104.16.132.229', '104.16.133.229']);
  const caa = records.find((r) => r.labels['dns.type'] === 'CAA' && r.labels['dns.qr'] === '1')!;
  assert.ok(caa.payload.answers.some((a: any) => a.type === 'CAA' && a.tag === 'issue' && typeof a.value === 'string' && a.value.length > 0));
  const naptr = records.find((r) => r.labels['dns.type'] === 'NAPTR' && r.labels['dns.qr'] === '1')!;
  assert.ok(naptr.payload.answers.every((a: any) => a.type === 'NAPTR' && typeof a.order === 'number' && typeof a.replacement === 'string'));
  const tsig = records.find((r) => r.payload.additionals.some((a: any) => a.type === 'TSIG'))!;
  assert.match(tsig.payload.additionals.find((a: any) => a.type === 'TSIG').rdata, /^[0-9a-f]+$/);
  const cookie = records.find((r) => r.payload.additionals.some((a: any) => a.type === 'OPT' && a.options.some((o: any) => o.name === 'COOKIE')));
  assert.ok(cookie, 'an EDNS COOKIE option');
  for (const r of records) assert.equal(r.protocol, 'dns');
});

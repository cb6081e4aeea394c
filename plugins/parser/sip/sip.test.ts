// sip parser: golden replays of real captures through `otus replay`,
// cross-checked message by message against tshark's fields.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, replay, tsharkFields } from '../../../test/helpers/otus-replay.js';

const FILES = [
  'suricata-verify--sip-body-frames.pcap',
  'suricata-verify--sip-body-large.pcap', // TCP: one INVITE over many segments
  'suricata-verify--sip-compact-form.pcap',
  'suricata-verify--sip-header-multi-value.pcap',
  'suricata-verify--sip-sdp.pcap',
  'suricata-verify--sip-tcp-method.pcap',
  'suricata-verify--sip-tcp-pattern-matching.pcap',
  'PcapPlusPlus--sip_non_default_port.pcap',
  'PcapPlusPlus--sip_reqs.pcap',
  'PcapPlusPlus--sip_resp.pcap',
  'PcapPlusPlus--sdp.pcap',
  'zeek--sip-invalid-content-length.pcap',
  'zeek--sip-long-request-response-paths.pcap',
  'otus--sip-tcp-segmented.pcap', // TCP on port 5080, not configured: found by the heuristic; every message over 2-5 segments
];

const TASK = `task:
  id: sip-golden
  parsers:
    - plugin: sip
      config: {ports: [5060, 5062, 5555, 5054]}
  unmatched_policy: drop
`;

const FIELDS = ['sip.Method', 'sip.Status-Code', 'sip.Call-ID', 'sip.from.addr', 'sip.to.addr', 'sip.CSeq', 'sip.from.tag', 'sip.to.tag', 'sip.User-Agent', 'sip.from.user', 'sip.to.user', 'sip.r-uri.user'];
const LABELS = ['sip.method', 'sip.status', 'sip.call-id', 'sip.from', 'sip.to', 'sip.cseq', 'sip.from-tag', 'sip.to-tag', 'sip.user-agent', 'sip.from-user', 'sip.to-user', 'sip.ruri-user'];
/** Columns compared both ways (a label where tshark has none is wrong too): the parsed URI users. */
const STRICT = new Set(['sip.from-user', 'sip.to-user', 'sip.ruri-user']);

for (const name of FILES) {
  test(`${name}: every SIP message, with the labels tshark shows`, () => {
    const file = join(FIXTURES, name);
    const { records, stats } = replay(TASK, [file]);
    // tshark: one line per frame; a frame with several messages joins values with ','.
    const want: string[][] = [];
    const single: boolean[] = []; // the message was alone in its frame (tshark's columns line up)
    for (const row of tsharkFields(file, 'sip', FIELDS)) {
      const cols = row.map((c) => (c === '' ? [] : c.split(',')));
      const n = Math.max(cols[0].length + cols[1].length, 1);
      for (let i = 0; i < n; i++) {
        want.push(cols.map((c) => c[i] ?? ''));
        single.push(n === 1);
      }
    }
    const got = records.map((r) => LABELS.map((k) => r.labels[k] ?? ''));
    assert.ok(want.length > 0);
    assert.equal(got.length, want.length, `messages: ${JSON.stringify(got.map((g) => g[0] || g[1]))} vs ${JSON.stringify(want.map((g) => g[0] || g[1]))}`);
    for (let i = 0; i < want.length; i++) {
      // Method and status always; the rest where tshark has one message per frame (its columns then line up).
      const w = want[i];
      const g = got[i];
      assert.equal(g[0] || g[1], w[0] || w[1], `message ${i}`);
      assert.equal(g[2], w[2], `message ${i} call-id`);
      for (let k = 3; k < FIELDS.length; k++) if (w[k] !== '' || (STRICT.has(LABELS[k]) && single[i])) assert.equal(g[k], w[k], `message ${i} ${LABELS[k]}`);
    }
    for (const r of records) {
      assert.equal(r.protocol, 'sip');
      assert.match(r.payload.start_line, /SIP\/2\.0/);
      assert.ok(Array.isArray(r.payload.headers) && r.payload.headers.length > 0);
    }
    assert.equal(stats.parsers.sip.records, records.length);
  });
}

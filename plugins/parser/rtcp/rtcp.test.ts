// rtcp: golden replays against tshark's rtcp.pt (every packet of every
// compound), rtcp.ssrc.identifier / rtcp.senderssrc, and report blocks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, ROOT, replay, tsharkFields } from '../../../test/helpers/otus-replay.js';

const TASK = `task:
  id: rtcp-golden
  parsers:
    - plugin: rtp
    - plugin: rtcp
      config: {heuristic: true}
  unmatched_policy: drop
`;

for (const file of [join(ROOT, 'samples/rtp-g711a.pcap'), join(FIXTURES, 'packetnet--ipv6_rtcp1.pcap'), join(FIXTURES, 'packetnet--ipv6_rtcp2.pcap')]) {
  test(`${file.split('/').pop()}: every RTCP packet type as tshark's rtcp.pt, report blocks as its fields`, () => {
    const { records } = replay(TASK, [file]);
    const got = records.filter((r) => r.protocol === 'rtcp');
    const want = tsharkFields(file, 'rtcp', ['rtcp.pt', 'rtcp.senderssrc', 'rtcp.ssrc.fraction', 'rtcp.ssrc.cum_nr', 'rtcp.ssrc.jitter'], ['-d', `udp.port==${file.includes('rtp-g711a') ? 2009 : 6001},rtcp`]);
    assert.ok(want.length >= 1);
    assert.deepEqual(got.map((r) => r.payload.packets.map((p: { pt: number }) => p.pt).join(',')), want.map((w) => w[0]));
    for (let i = 0; i < want.length; i++) {
      const first = got[i].payload.packets[0];
      if (want[i][1] !== '') assert.equal(got[i].labels['rtcp.ssrc'], String(Number(want[i][1])));
      const reports = got[i].payload.packets.flatMap((p: { reports?: unknown[] }) => p.reports ?? []);
      assert.equal(reports.map((r: { fraction_lost: number }) => r.fraction_lost).join(','), want[i][2]);
      assert.equal(reports.map((r: { cumulative_lost: number }) => r.cumulative_lost).join(','), want[i][3]);
      assert.equal(reports.map((r: { jitter: number }) => r.jitter).join(','), want[i][4]);
      assert.equal(got[i].labels['rtcp.type'], first.type);
    }
  });
}

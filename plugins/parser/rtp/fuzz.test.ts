// Fuzz: 1 M mutated RTP packets (and 1 M RTCP compounds) from the fixture
// captures: no exception escapes, nothing hangs, the heap stays bounded,
// every packet a record or a rejection counted by reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, ROOT } from '../../../test/helpers/otus-replay.js';
import { fuzzParser, payloadsOf } from '../../../test/helpers/voip-fuzz.js';
import { RtcpParser, RTCP_REJECT_NAMES } from '../rtcp/index.js';
import { MediaCorrelator } from './correlate.js';
import { RtpParser, RTP_REJECT_NAMES } from './index.js';

const FILES = [join(ROOT, 'samples/rtp-g711a.pcap'), join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(FIXTURES, 'packetnet--ipv6_rtcp1.pcap'), join(FIXTURES, 'packetnet--ipv6_rtcp2.pcap')];

test('fuzz: 1 M mutated RTP packets', { timeout: 600_000 }, () => {
  const seeds = payloadsOf(FILES, (p) => p.proto === 17).filter((s) => s[1] < 192 || s[1] > 223);
  const parser = new RtpParser({ ports: [], heuristic: true, learn_nat: false, nat_ttl: 1, event_payload_types: [101], raw: true }, new MediaCorrelator(null, false));
  const r = fuzzParser(parser, seeds, 1_000_000, 0xa11, 2006, 2008);
  const rej = parser.stats.rejects;
  console.log(`# rtp fuzz: ${JSON.stringify(r)} rejects ${JSON.stringify(Object.fromEntries(RTP_REJECT_NAMES.map((n, i) => [n, rej[i]])))} events ${parser.stats.events}`);
  assert.equal(r.refused, rej.reduce((a, b) => a + b, 0));
  assert.equal(r.accepted, parser.stats.packets);
  assert.ok(r.accepted > 100_000 && r.refused > 1000 && parser.stats.events > 1000);
  assert.equal(r.encodeRefused, 0);
  assert.ok(r.heapGrowthMb < 64);
});

test('fuzz: 1 M mutated RTCP compound packets', { timeout: 600_000 }, () => {
  const seeds = payloadsOf(FILES, (p) => p.proto === 17).filter((s) => s[1] >= 200 && s[1] <= 207);
  assert.ok(seeds.length >= 3);
  const parser = new RtcpParser({ ports: [2009], heuristic: false, learn_nat: false, nat_ttl: 1 }, new MediaCorrelator(null, false));
  const r = fuzzParser(parser, seeds, 1_000_000, 0xbee, 2009, 2007);
  const rej = parser.stats.rejects;
  console.log(`# rtcp fuzz: ${JSON.stringify(r)} rejects ${JSON.stringify(Object.fromEntries(RTCP_REJECT_NAMES.map((n, i) => [n, rej[i]])))}`);
  assert.equal(r.refused, rej.reduce((a, b) => a + b, 0));
  assert.equal(r.accepted, parser.stats.compounds);
  assert.ok(r.accepted > 50_000 && r.refused > 50_000);
  assert.equal(r.encodeRefused, 0);
  assert.ok(r.heapGrowthMb < 64);
});

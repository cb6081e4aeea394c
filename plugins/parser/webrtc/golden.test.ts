// Golden test: `otus replay` with the webrtc parser over real captures (zeek's
// WebRTC ICE + DTLS session and DTLS 1.0/1.2/1.3 handshakes, packetnet's RTP
// packet), cross-checked with tshark: stun.type (method and class labels),
// every DTLS record's content type and every plaintext handshake type, and
// (decoding the RTP port as RTP) rtp.ssrc, rtp.p_type, rtp.seq of the SRTP
// header. Every datagram tshark dissects as STUN/DTLS/RTP has a record that
// agrees; records tshark has nothing to say about are DTLS 1.3 unified
// headers (tshark 4.0 does not dissect them: checked by count below).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AGG, FIXTURES, byKey, replay, tsharkFields, tsharkMissing, type JsonRecord } from '../../../test/helpers/parser-golden.js';
import { CLASS_NAME, METHOD_NAME } from './message.js';

const FILES = ['zeek--tls-webrtc-stun.pcap', 'zeek--tls-dtls1_0.pcap', 'zeek--tls-dtls1_2.pcap', 'zeek--tls-dtls13-cid.pcap', 'zeek--tls-dtls13-wolfssl.pcap', 'packetnet--ipv6_rtp.pcap'];
const TASK = `task:
  id: webrtc-golden
  parsers:
    - plugin: webrtc
      config: {ports: [43044, 4433, 4400, 11111, 6000]}
  unmatched_policy: drop
`;

const skip = tsharkMissing();

test('webrtc labels and payloads agree with tshark on every STUN, DTLS and RTP datagram of the fixtures', { skip: skip ?? false }, () => {
  const paths = FILES.map((f) => join(FIXTURES, f));
  const { records, stats } = replay(TASK, paths);
  const recs = byKey(records);
  const used = new Set<JsonRecord>();
  const problems: string[] = [];
  let stun = 0;
  let dtls = 0;
  let rtp = 0;
  for (let i = 0; i < FILES.length; i++) {
    const rows = tsharkFields(paths[i], 'stun || dtls || rtp', ['stun.type', 'dtls.record.content_type', 'dtls.handshake.type', 'rtp.ssrc', 'rtp.p_type', 'rtp.seq'], ['-d', 'udp.port==6000,rtp'], 'a');
    for (const row of rows) {
      const [stype, cts, hss, ssrc, pt, seq] = row.f;
      const rec = recs.get(row.key)?.[0];
      const where = `${FILES[i]} frame ${row.frame}`;
      if (!rec) {
        problems.push(`${where}: no record`);
        continue;
      }
      used.add(rec);
      const L = rec.labels;
      if (stype !== '') {
        stun++;
        const t = Number(stype);
        const method = (t & 0x000f) | ((t & 0x00e0) >> 1) | ((t & 0x3e00) >> 2);
        const cls = ((t & 0x0100) >> 7) | ((t & 0x0010) >> 4);
        if (L['webrtc.kind'] !== 'stun' || rec.payload.type !== t || L['stun.method'] !== METHOD_NAME[method] || L['stun.class'] !== CLASS_NAME[cls]) {
          problems.push(`${where}: stun.type ${stype}, otus ${JSON.stringify(L)} type ${rec.payload.type}`);
        }
      } else if (cts !== '') {
        dtls++;
        const types = cts.split(AGG).map(Number);
        const ours = rec.payload.records.filter((r: any) => r.content_type !== undefined).map((r: any) => r.content_type);
        const hs = hss === '' ? [] : hss.split(AGG).map(Number);
        const ourHs = rec.payload.records.filter((r: any) => r.handshake_type !== undefined).map((r: any) => r.handshake_type);
        if (L['webrtc.kind'] !== 'dtls' || L['dtls.content-type'] !== String(types[0]) || ours.join() !== types.join() || ourHs.join() !== hs.join()) {
          problems.push(`${where}: dtls ${cts} / ${hss}, otus ${JSON.stringify(L)} ${ours} / ${ourHs}`);
        }
      } else if (ssrc !== '') {
        rtp++;
        const p = rec.payload;
        if (L['webrtc.kind'] !== 'srtp' || p.ssrc !== Number(ssrc) || p.pt !== Number(pt) || p.seq !== Number(seq)) problems.push(`${where}: rtp ${ssrc}/${pt}/${seq}, otus ${JSON.stringify(p)}`);
      }
    }
  }
  const unchecked = records.filter((r) => !used.has(r));
  // tshark 4.0 shows DTLS 1.3 ciphertext (unified header, first byte 001xxxxx) as plain UDP.
  for (const r of unchecked) {
    if (!(r.labels['webrtc.kind'] === 'dtls' && r.payload.records.length > 0 && r.payload.records.every((x: any) => x.unified === true))) problems.push(`record tshark has nothing for: ${JSON.stringify(r.labels)} ${JSON.stringify(r.payload).slice(0, 200)}`);
  }
  assert.deepEqual(problems, []);
  assert.deepEqual([stun, dtls, rtp], [10, 53, 1]);
  assert.equal(unchecked.length, 36, 'DTLS 1.3 unified-header datagrams');
  assert.equal(stats.parsers.webrtc.records, records.length);
});

// Fuzz: 1 M mutated SIP messages from the fixture captures over UDP, and
// mutated streams in random cuts over TCP (handleStream). No exception
// escapes, nothing hangs, the heap stays bounded, and every message is a
// record or a rejection counted by reason; over TCP, a chunk's DataView
// changes nothing but speed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { encodeJson, encodeProtobuf } from '../../../src/pipeline/codec.js';
import type { RecordEmitter } from '../../../src/plugin/types.js';
import { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { FIXTURES } from '../../../test/helpers/otus-replay.js';
import { fuzzParser, mutate, payloadsOf, rng } from '../../../test/helpers/voip-fuzz.js';
import { dialogCapture } from '../../../test/helpers/sip-dialogs.js';
import { SipParser } from './index.js';
import { SIP_REJECT_NAMES } from './message.js';

const FILES = ['suricata-verify--sip-body-frames.pcap', 'suricata-verify--sip-compact-form.pcap', 'suricata-verify--sip-header-multi-value.pcap', 'suricata-verify--sip-sdp.pcap', 'PcapPlusPlus--sip_reqs.pcap', 'PcapPlusPlus--sip_resp.pcap', 'PcapPlusPlus--sdp.pcap', 'PcapPlusPlus--sip_non_default_port.pcap', 'zeek--sip-invalid-content-length.pcap', 'suricata-verify--sip-tcp-method.pcap'].map((f) => join(FIXTURES, f));
const CFG = { ports: [5060], heuristic: true, track_media: true, media_ttl: 60, bye_grace: 1, max_message: 65536 };

test('fuzz: 1 M mutated SIP datagrams; every one a record or a counted rejection', { timeout: 600_000 }, () => {
  const seeds = payloadsOf(FILES, (p) => p.sport === 5060 || p.dport === 5060 || p.proto === 17);
  assert.ok(seeds.length >= 20, `${seeds.length} seeds`);
  const parser = new SipParser(CFG, null);
  const r = fuzzParser(parser, seeds, 1_000_000, 0x51f, 5060, 5060);
  const rej = parser.stats.rejects;
  const counted = rej.reduce((a, b) => a + b, 0) - rej[6] - rej[5]; // truncated bodies / bad lengths are emitted (and counted)
  const reasons = Object.fromEntries(SIP_REJECT_NAMES.map((n, i) => [n, rej[i]]).filter(([, v]) => (v as number) > 0));
  console.log(`# sip fuzz: ${JSON.stringify(r)} rejects ${JSON.stringify(reasons)}`);
  assert.equal(r.accepted, parser.stats.messages);
  // Every refusal by handle is a counted rejection (canHandle refuses only empty payloads on port 5060).
  assert.equal(r.refused, counted);
  assert.ok(r.notHandled < 5000);
  assert.ok(r.accepted > 100_000 && r.refused > 10_000, 'the mutations exercise both outcomes');
  assert.equal(r.encodeRefused, 0);
  assert.ok(r.heapGrowthMb < 64, `heap grew ${r.heapGrowthMb} MB`);
});

/** A stream of 1 to `most` messages into `stream`, each a seed mutated (or, with `whole`, half of them as they are); returns its length. */
function composeStream(seeds: Uint8Array[], stream: Uint8Array, msg: Uint8Array, rand: () => number, most: number, whole: boolean): number {
  let len = 0;
  for (let k = 1 + Math.floor(rand() * most); k > 0; k--) {
    const seed = seeds[Math.floor(rand() * seeds.length)];
    const n = whole && rand() < 0.5 ? (msg.set(seed), seed.length) : mutate(seed, msg, rand);
    stream.set(msg.subarray(0, n), len);
    len += n;
  }
  return len;
}

test('fuzz: mutated SIP over TCP in random cuts, through handleStream', { timeout: 600_000 }, () => {
  const seeds = payloadsOf(FILES, () => true);
  const parser = new SipParser(CFG, null);
  const rand = rng(0x7cb);
  const out = new Uint8Array(1 << 20);
  let emitted = 0;
  const em: RecordEmitter = {
    record: new OutputRecord(),
    emit(): boolean {
      emitted++;
      assert.ok(encodeJson(this.record, out, 0, out.length) > 0 && encodeProtobuf(this.record, out, 0, out.length) > 0);
      return true;
    },
  };
  const c = new TcpChunk();
  const stream = new Uint8Array(1 << 17);
  const streamView = new DataView(stream.buffer);
  const msg = new Uint8Array(1 << 15);
  let bytes = 0;
  for (let s = 0; s < 30_000; s++) {
    const len = composeStream(seeds, stream, msg, rand, 4, false);
    // Feed in random cuts, handing back what was not consumed (as the reassembler does).
    let start = 0;
    let end = 0;
    while (end < len) {
      end = Math.min(len, end + 1 + Math.floor(rand() * 700));
      c.buf = stream;
      c.view = (s & 1) === 0 ? streamView : null; // half the streams scanned by words
      c.off = start;
      c.len = end - start;
      c.gap = false;
      const used = parser.handleStream(c, em);
      assert.ok(used >= 0 && used <= c.len);
      start += used;
    }
    bytes += len;
  }
  console.log(`# sip tcp fuzz: 30000 streams, ${bytes} bytes, ${emitted} messages, stats ${JSON.stringify(parser.stats.toJSON())}`);
  assert.equal(parser.stats.tcpMessages, emitted);
  assert.ok(emitted > 10_000);
});

test('over TCP, mutated streams give the same records whether the chunk comes with a DataView (scans and label copies by words) or not', () => {
  const seeds = payloadsOf(FILES, () => true);
  const rand = rng(0x9e1);
  const out = new Uint8Array(1 << 20);
  const run = (): { parser: SipParser; c: TcpChunk; records: string[]; em: RecordEmitter } => {
    const records: string[] = [];
    const em: RecordEmitter = {
      record: new OutputRecord(),
      emit(): boolean {
        records.push(Buffer.from(out.subarray(0, encodeJson(this.record, out, 0, out.length))).toString('latin1'));
        return true;
      },
    };
    return { parser: new SipParser(CFG, null), c: new TcpChunk(), records, em };
  };
  const words = run();
  const bytes = run();
  const stream = new Uint8Array(1 << 17);
  const view = new DataView(stream.buffer);
  const msg = new Uint8Array(1 << 15);
  for (let s = 0; s < 4000; s++) {
    const len = composeStream(seeds, stream, msg, rand, 3, true);
    let start = 0;
    let end = 0;
    while (end < len) {
      end = Math.min(len, end + 1 + Math.floor(rand() * 700));
      let used = -1;
      for (const r of [words, bytes]) {
        r.c.buf = stream;
        r.c.view = r === words ? view : null;
        r.c.off = start;
        r.c.len = end - start;
        const u = r.parser.handleStream(r.c, r.em);
        if (used >= 0) assert.equal(u, used, `stream ${s}: bytes consumed`);
        used = u;
      }
      start += used;
    }
  }
  assert.ok(words.records.length > 3000, `${words.records.length} records`);
  assert.deepEqual(words.records, bytes.records);
});

test('fuzz: 300 000 mutated datagrams with call records on: no throw, every call record encodes in JSON and protobuf', { timeout: 600_000 }, () => {
  // Seeds: the fixtures and the dialogs of the call-record test (INVITE, 18x, 2xx, CANCEL, 487, BYE, INFO digits, SDP).
  const seeds = [...payloadsOf(FILES, (p) => p.proto === 17), ...dialogCapture().frames.filter((f) => f.frame[36] === 0x13 && f.frame[37] === 0xc4).map((f) => f.frame.subarray(42))];
  const parser = new SipParser({ ...CFG, calls: true, call_updates: true, call_timeout: 1 }, null);
  const out = new Uint8Array(1 << 20);
  let calls = 0;
  parser.attach({
    record: new OutputRecord(),
    emit(): boolean {
      calls++;
      assert.equal(this.record.protocol, 'sip.call');
      assert.ok(encodeJson(this.record, out, 0, out.length) > 0 && encodeProtobuf(this.record, out, 0, out.length) > 0);
      return true;
    },
  });
  const r = fuzzParser(parser, seeds, 300_000, 0xca11, 5060, 5060);
  parser.flush();
  const c = parser.counters().calls as Record<string, number>;
  console.log(`# sip calls fuzz: ${JSON.stringify(r)} calls ${JSON.stringify(c)}`);
  assert.equal(r.encodeRefused, 0);
  assert.ok(c.opened > 1000, `${c.opened} calls opened`);
  assert.equal(c.records, calls);
});

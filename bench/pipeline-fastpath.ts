// In-process pipeline benchmark: decode → parser → processors → encode into a
// sink that is always empty (no ring, no other process). It isolates what a
// capture process spends per packet on the RTP-style fast path and on
// unmatched forwarding.
//
//   node dist/bench/pipeline-fastpath.js [--packets N] [--format json|protobuf]

import { benchArgs, int, oneOf, opt } from './cli.js';
import os from 'node:os';
import { openCapture } from '../src/capture-file/open.js';
import { Decoder } from '../src/decode/decoder.js';
import type { DecodedPacket } from '../src/decode/packet.js';
import { ENCODERS } from '../src/pipeline/codec.js';
import { Pipeline } from '../src/pipeline/pipeline.js';
import type { OutputRecord } from '../src/pipeline/record.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { L4Payload } from '../src/pipeline/unmatched.js';
import type { Parser, RecordFormat } from '../src/plugin/types.js';
import { fileURLToPath } from 'node:url';

const o = benchArgs({ packets: opt(5_000_000, int), format: opt('', oneOf('json', 'protobuf')) });
const total = o.packets;
const formats: RecordFormat[] = o.format ? [o.format] : ['json', 'protobuf'];
const SAMPLE = fileURLToPath(new URL('../../samples/rtp-g711a.pcap', import.meta.url));

class EmptySink implements RecordSink {
  readonly u8 = new Uint8Array(1 << 20);
  committed = 0;
  reserve(len: number): number {
    return len <= this.u8.length ? 0 : -1;
  }
  commit(): void {
    this.committed++;
  }
}

/** Labels as an RTP parser fed by the flow registry sets them. */
class FastRtp implements Parser {
  readonly protocol = 'rtp';
  private readonly payload = new L4Payload();
  canHandle(p: DecodedPacket): boolean {
    return p.dport === 2008 || p.sport === 2008;
  }
  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'rtp';
    const b = p.payloadBuf;
    const o = p.payloadOff;
    out.labels.setBytes('call-id', b, o + 12, 16);
    out.labels.set('codec', 'PCMA');
    out.labels.set('rtp.pt', '8');
    this.payload.type = 'rtp';
    this.payload.payloadLen = p.payloadLen;
    out.payload = this.payload;
    return true;
  }
}

const rd = openCapture(SAMPLE);
const offs: number[] = [];
const lens: number[] = [];
while (rd.next()) {
  offs.push(rd.frame.off);
  lens.push(rd.frame.caplen);
}
const { buf, view } = rd.frame;
const off = Int32Array.from(offs);
const len = Int32Array.from(lens);

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}; ${total} packets of ${SAMPLE}`);
for (const format of formats) {
  for (const mode of ['rtp fast path', 'unmatched forward']) {
    const sink = new EmptySink();
    const pl = new Pipeline({
      decoder: new Decoder(),
      parsers: mode === 'rtp fast path' ? [new FastRtp()] : [],
      processors: [],
      unmatched: 'forward',
      encode: ENCODERS[format],
      sink,
    });
    const run = (count: number): void => {
      for (let i = 0, j = 0; i < count; i++) {
        pl.processBytes(buf, view, off[j]!, len[j]!, len[j]!, 1, 1_700_000_000 + (i >> 10), (i & 1023) * 1000, true, 6);
        if (++j === off.length) j = 0;
      }
    };
    run(500_000);
    const c0 = process.cpuUsage();
    run(total);
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    console.log(`${format.padEnd(8)} ${mode.padEnd(18)} ${(total / cpu / 1e6).toFixed(2)} M packets per CPU-second (${((cpu * 1e9) / total).toFixed(0)} ns/packet), records ${sink.committed}`);
  }
}

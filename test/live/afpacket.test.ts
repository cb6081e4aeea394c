// af_packet_v3 on a real veth pair: frames arrive byte-exact (VLAN tags
// reinserted), snaplen truncates, fanout keeps flows whole and spreads them,
// a stalled consumer gets counted kernel drops and recovers, and 100
// start/stop cycles leak no fd or mapping.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { AfPacketCapturer } from '../../src/capture/afpacket.js';
import { type CaptureOptions, defaultCaptureOptions, type FrameSink } from '../../src/capture/capturer.js';
import { OtusError } from '../../src/util/errors.js';
import {
  hex,
  ipv4Frame,
  ipv6Frame,
  liveSkipReason,
  makeVethHost,
  mapLines,
  openFds,
  removeStaleNamespaces,
  tempDir,
  type VethHost,
  waitFor,
  writePcap,
} from '../helpers/live.js';

const skip = liveSkipReason();

interface Got {
  stream: number;
  bytes: string;
  caplen: number;
  len: number;
  sec: number;
  nsec: number;
}

function collector(out: Got[], stream: number): FrameSink {
  return {
    frame(buf, _view, off, caplen, len, _lt, sec, nsec) {
      out.push({ stream, bytes: hex(buf.subarray(off, off + caplen)), caplen, len, sec, nsec });
    },
  };
}

describe('af_packet_v3 on veth', { skip: skip ?? false }, () => {
  let host: VethHost;
  let tmp: ReturnType<typeof tempDir>;
  let group = 0x4000 + (process.pid & 0x3fff);
  const opts = (patch: Partial<CaptureOptions> = {}): CaptureOptions => ({ ...defaultCaptureOptions(host.capIf), blockSize: 1 << 16, blockCount: 64, fanoutGroup: group++, ...patch });

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

  test('every frame arrives byte-exact and in order, VLAN tags reinserted, ns timestamps', async () => {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const f = { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 5060, dport: 1000 + (i % 50), proto: (i % 3 === 0 ? 6 : 17) as 6 | 17 };
      if (i % 10 === 7) frames.push(ipv4Frame(f, (i * 37) % 1400, i, { vlan: 100 + (i % 4) }));
      else if (i % 10 === 8) frames.push(ipv6Frame(4000 + i, 5060, (i * 13) % 1000, i));
      else frames.push(ipv4Frame(f, (i * 53) % (f.proto === 6 ? 1460 : 1472), i)); // IP within the 1500 MTU
    }
    const file = join(tmp.dir, 'exact.pcap');
    writePcap(file, frames);
    const cap = new AfPacketCapturer(opts());
    const got: Got[] = [];
    const s = cap.capture(0);
    s.start(collector(got, 0));
    const t0 = Date.now() / 1000;
    try {
      host.replay(file);
      assert.ok(await waitFor(() => got.length >= frames.length), `only ${got.length} of ${frames.length} frames arrived`);
      await new Promise((r) => setTimeout(r, 100)); // nothing extra may follow
      assert.equal(got.length, frames.length);
      for (let i = 0; i < frames.length; i++) {
        assert.equal(got[i]!.bytes, hex(frames[i]!), `frame ${i} differs`);
        assert.equal(got[i]!.len, frames[i]!.length);
        assert.equal(got[i]!.caplen, frames[i]!.length);
        assert.ok(got[i]!.sec >= Math.floor(t0) - 1 && got[i]!.sec <= Date.now() / 1000 + 1, `frame ${i} timestamp ${got[i]!.sec}`);
        assert.ok(got[i]!.nsec >= 0 && got[i]!.nsec < 1e9);
      }
      assert.ok(got.some((g) => g.nsec % 1000 !== 0), 'timestamps carry nanoseconds');
      const st = s.stats();
      assert.equal(st.frames, frames.length);
      assert.equal(st.kernelPackets, frames.length);
      assert.equal(st.kernelDrops, 0);
    } finally {
      cap.stop();
    }
  });

  test('snaplen truncates caplen and keeps len', async () => {
    const frames = [ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 1, dport: 2 }, 1000, 1), ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 1, dport: 2 }, 10, 2)];
    const file = join(tmp.dir, 'snap.pcap');
    writePcap(file, frames);
    const cap = new AfPacketCapturer(opts({ snaplen: 96 }));
    const got: Got[] = [];
    cap.capture(0).start(collector(got, 0));
    try {
      host.replay(file);
      assert.ok(await waitFor(() => got.length >= 2));
      assert.equal(got[0]!.caplen, 96);
      assert.equal(got[0]!.len, frames[0]!.length);
      assert.equal(got[0]!.bytes, hex(frames[0]!.subarray(0, 96)));
      assert.equal(got[1]!.caplen, frames[1]!.length);
    } finally {
      cap.stop();
    }
  });

  test('fanout hash keeps both directions of a flow on one stream and spreads flows over all streams', async () => {
    const frames: Uint8Array[] = [];
    const flows = 64;
    for (let rep = 0; rep < 4; rep++) {
      for (let k = 0; k < flows; k++) {
        const a = [10, 1, k >> 8, k & 0xff];
        const b = [10, 2, 0, 1 + (k % 7)];
        const sp = 20000 + k;
        frames.push(ipv4Frame({ src: a, dst: b, sport: sp, dport: 5060 }, 100, k));
        frames.push(ipv4Frame({ src: b, dst: a, sport: 5060, dport: sp }, 120, k));
      }
    }
    const file = join(tmp.dir, 'flows.pcap');
    writePcap(file, frames);
    const streams = 2;
    const cap = new AfPacketCapturer(opts({ streams }));
    const got: Got[] = [];
    for (let i = 0; i < streams; i++) cap.capture(i).start(collector(got, i));
    try {
      host.replay(file);
      assert.ok(await waitFor(() => got.length >= frames.length), `only ${got.length} of ${frames.length}`);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got.length, frames.length, 'each frame on exactly one stream');
      const flowStream = new Map<string, number>();
      for (const g of got) {
        // flow key: the unordered address pair + port pair (IPv4 at 14: addrs 26..34, ports 34..38)
        const b = Buffer.from(g.bytes, 'hex');
        const ends = [b.subarray(26, 30).toString('hex') + b.readUInt16BE(34), b.subarray(30, 34).toString('hex') + b.readUInt16BE(36)].sort().join('-');
        const prev = flowStream.get(ends);
        if (prev === undefined) flowStream.set(ends, g.stream);
        else assert.equal(g.stream, prev, `flow ${ends} seen on streams ${prev} and ${g.stream}`);
      }
      assert.equal(flowStream.size, flows);
      const perStream = [0, 0];
      for (const s of flowStream.values()) perStream[s]!++;
      assert.ok(perStream.every((n) => n >= flows / 8), `flows per stream: ${perStream}`);
    } finally {
      cap.stop();
    }
  });

  test('fanout lb alternates frames over the streams; cpu and qm groups open and deliver every frame once', async () => {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) frames.push(ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 7, dport: 9 }, 64, i));
    const file = join(tmp.dir, 'one-flow.pcap');
    writePcap(file, frames);
    for (const fanoutMode of ['lb', 'cpu', 'qm'] as const) {
      const cap = new AfPacketCapturer(opts({ streams: 2, fanoutMode }));
      const got: Got[] = [];
      for (let i = 0; i < 2; i++) cap.capture(i).start(collector(got, i));
      try {
        host.replay(file);
        assert.ok(await waitFor(() => got.length >= frames.length), `${fanoutMode}: ${got.length} of ${frames.length}`);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(got.length, frames.length, `${fanoutMode}: each frame once`);
        assert.deepEqual(got.map((g) => g.bytes).sort(), frames.map(hex).sort());
        if (fanoutMode === 'lb') {
          // One flow, yet round-robin: both streams get half (give or take a block boundary).
          const on0 = got.filter((g) => g.stream === 0).length;
          assert.ok(on0 >= 80 && on0 <= 120, `lb: ${on0} of 200 on stream 0`);
        }
      } finally {
        cap.stop();
      }
    }
  });

  test('promiscuous mode is held while capturing and released on stop', () => {
    const promiscuity = (): number => Number(/promiscuity (\d+)/.exec(execFileSync('ip', ['-d', 'link', 'show', host.capIf], { encoding: 'utf8' }))![1]);
    assert.equal(promiscuity(), 0);
    const on = new AfPacketCapturer(opts({ promisc: true }));
    on.capture(0);
    assert.equal(promiscuity(), 1);
    on.stop();
    assert.equal(promiscuity(), 0);
    const off = new AfPacketCapturer(opts({ promisc: false }));
    off.capture(0);
    assert.equal(promiscuity(), 0);
    off.stop();
  });

  test('a stalled consumer gets counted kernel drops, no hang, and recovers', async () => {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) frames.push(ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 7, dport: 9 }, 400, i));
    const file = join(tmp.dir, 'flood.pcap');
    writePcap(file, frames);
    // 4 blocks of 8 KiB: about 70 frames fit.
    const cap = new AfPacketCapturer(opts({ blockSize: 8192, blockCount: 4, frameSize: 2048 }));
    const got: Got[] = [];
    const s = cap.capture(0);
    try {
      s.start(collector(got, 0));
      s.pause(); // the consumer stops reading
      host.replay(file);
      const st = { ...s.stats() }; // a snapshot: stats() returns the live, accumulating object
      assert.ok(st.kernelDrops > 0, `kernel drops counted: ${JSON.stringify(st)}`);
      assert.ok(st.kernelDrops < frames.length);
      s.resume();
      assert.ok(await waitFor(() => got.length > 0), 'frames held in the ring are delivered after resume');
      // The ring is usable again: new traffic flows, and every frame the kernel took is delivered or counted.
      const file2 = join(tmp.dir, 'after.pcap');
      writePcap(file2, frames.slice(0, 20));
      host.replay(file2);
      const settled = (): boolean => {
        const x = s.stats();
        return x.kernelPackets >= st.kernelPackets + 20 && x.frames + x.kernelDrops === x.kernelPackets;
      };
      assert.ok(await waitFor(settled), `not settled: ${JSON.stringify(s.stats())}`);
      assert.deepEqual(got.slice(-20).map((g) => g.bytes), frames.slice(0, 20).map(hex), 'the 20 frames sent after recovery');
      const st2 = s.stats();
      assert.ok(st2.kernelDrops >= st.kernelDrops, 'counters accumulate across reads');
      assert.equal(got.length, st2.frames);
    } finally {
      cap.stop();
    }
  });

  test('100 start/stop cycles leak no fd and no mapping; a stopped ring is detached', () => {
    const o = opts({ blockSize: 1 << 16, blockCount: 8 });
    const cycle = (): void => {
      const cap = new AfPacketCapturer({ ...o });
      const s = cap.capture(0);
      s.start({ frame() {} });
      s.walkReady();
      cap.stop();
    };
    cycle(); // warm up lazily created state
    const fds = openFds();
    const maps = mapLines();
    for (let i = 0; i < 100; i++) cycle();
    assert.equal(openFds(), fds, 'open fds after 100 cycles');
    const grown = mapLines() - maps;
    assert.ok(grown < 20, `/proc/self/maps grew by ${grown} lines over 100 cycles (a leaked ring adds one per cycle)`);
    // Stop is idempotent and stats stay readable.
    const cap = new AfPacketCapturer({ ...o });
    const s = cap.capture(0);
    cap.stop();
    cap.stop();
    assert.equal(s.stopped, true);
    assert.equal(s.walkReady(), 0);
    assert.equal(s.stats().frames, 0);
  });

  test('bad filter text: OTUS_ERR_FILTER naming the filter; the running filter stays', async () => {
    const cap = new AfPacketCapturer(opts({ filter: 'udp port 9' }));
    const got: Got[] = [];
    cap.capture(0).start(collector(got, 0));
    try {
      assert.throws(
        () => cap.setFilter('udp port nine'),
        (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_FILTER' && /udp port nine/.test(e.message) && /port/.test(e.message),
      );
      const frames = [
        ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 7, dport: 9 }, 10, 1),
        ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 7, dport: 10 }, 10, 2),
        ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 7, dport: 9 }, 10, 3),
      ];
      const file = join(tmp.dir, 'keep.pcap');
      writePcap(file, frames);
      host.replay(file);
      assert.ok(await waitFor(() => got.length >= 2));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(got.map((g) => g.bytes), [hex(frames[0]!), hex(frames[2]!)]);
      // A good filter replaces it at run time.
      cap.setFilter('udp port 10');
      host.replay(file);
      assert.ok(await waitFor(() => got.length >= 3));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got.length, 3);
      assert.equal(got[2]!.bytes, hex(frames[1]!));
    } finally {
      cap.stop();
    }
    assert.throws(() => new AfPacketCapturer(opts({ filter: 'tcp and (' })).init(), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_FILTER');
    assert.throws(() => new AfPacketCapturer(opts({ blockSize: 5000 })).init(), (e: unknown) => e instanceof OtusError && /block size/.test(e.message));
  });
});

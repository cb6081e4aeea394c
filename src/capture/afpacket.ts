// af_packet_v3: AF_PACKET sockets with a TPACKET_V3 ring, one per stream,
// joined in one PACKET_FANOUT group (plugins/README.md). The ring is one
// ArrayBuffer over the kernel's mapping: JavaScript walks every block the
// kernel has retired to user space (block_status & TP_STATUS_USER), hands
// each frame to the sink in place, then gives the block back by storing
// TP_STATUS_KERNEL, as libpcap and Suricata do. No native call per block or
// per packet; readiness comes from a uv_poll on the socket.

import { endianness } from 'node:os';
import { native, type NativeHandle } from '../native.js';
import { OtusError } from '../util/errors.js';
import { type CaptureOptions, type Capturer, type FanoutMode, type FrameSink, StreamStats } from './capturer.js';
import { compileFilter, filterText, type StructuredFilter } from './filter.js';
import { checkCaptureAllowed, type InterfaceInfo, interfaceInfo } from './iface.js';
import { PolledStream } from './polled-stream.js';
import { PageAhead } from './page-ahead.js';

const LE = endianness() === 'LE';

// <linux/if_packet.h>
const TP_STATUS_KERNEL = 0;
const TP_STATUS_USER = 1;
const TP_STATUS_VLAN_VALID = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID = 1 << 6;
const FANOUT_MODES: Record<FanoutMode, number> = { hash: 0, lb: 1, cpu: 2, qm: 5 };
const PACKET_FANOUT_FLAG_DEFRAG = 0x8000;
const TPACKET3_HDRLEN = 68; // TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll)
const PAGE = 4096;

// tpacket_block_desc (hdr.bh1) and tpacket3_hdr field offsets.
const BLK_STATUS = 8;
const BLK_NUM_PKTS = 12;
const BLK_FIRST = 16;
const PKT_NEXT = 0;
const PKT_SEC = 4;
const PKT_NSEC = 8;
const PKT_SNAPLEN = 12;
const PKT_LEN = 16;
const PKT_STATUS = 20;
const PKT_MAC = 24;
const PKT_VLAN_TCI = 32;
const PKT_VLAN_TPID = 36;
const PKT_SLL_PKTTYPE = 58; // sockaddr_ll follows at TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48; sll_pkttype at +10
const PACKET_OUTGOING = 4;

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** `ret #0`: a classic BPF program that takes no frame (struct sock_filter, host order). */
const DROP_ALL = ((): Buffer => {
  const b = Buffer.alloc(8);
  new Uint16Array(b.buffer, b.byteOffset, 1)[0] = 0x06; // BPF_RET | BPF_K, k = 0
  return b;
})();
/** drain(): a frame that passed the old filter on another CPU lands within this (µs in practice). */
const DRAIN_SETTLE_MS = 2;
/** drain(): beyond the kernel's worst case (two retire periods), give up waiting for the last block. */
const DRAIN_MARGIN_MS = 50;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Validates ring and fanout options; throws OTUS_ERR_BAD_ARGUMENT naming the option. */
export function validateAfPacketOptions(o: CaptureOptions): void {
  const bad = (what: string, why: string): never => {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `af_packet_v3 ${what}: ${why}`);
  };
  const int = (what: string, v: number, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi) bad(what, `expected an integer in ${lo}..${hi}, got ${v}`);
  };
  int('streams', o.streams, 1, 1024);
  int('snaplen', o.snaplen, 64, 262144);
  int('block size', o.blockSize, PAGE, 1 << 30);
  if (!isPow2(o.blockSize)) bad('block size', `must be a power of two number of pages, got ${o.blockSize}`);
  int('block count', o.blockCount, 1, 1 << 20);
  int('frame size', o.frameSize, TPACKET3_HDRLEN + 16, o.blockSize);
  if (o.frameSize % 16 !== 0 || o.blockSize % o.frameSize !== 0) bad('frame size', `must be a multiple of 16 dividing the block size, got ${o.frameSize}`);
  int('retire timeout (ms)', o.retireMs, 1, 60000);
  int('fanout group', o.fanoutGroup, 0, 0xffff);
  if (!(o.fanoutMode in FANOUT_MODES)) bad('fanout mode', `expected hash, cpu, lb or qm, got ${o.fanoutMode}`);
}

export class AfPacketStream extends PolledStream {
  readonly index: number;
  readonly linkType: number;
  private handle: NativeHandle | null;
  protected readonly fd: number;
  private ring: ArrayBuffer;
  private readonly u8: Uint8Array;
  private readonly view: DataView;
  /** Host-order views of the ring for header fields (status words, tpacket3_hdr). */
  private readonly status: Uint32Array;
  private readonly u16: Uint16Array;
  private readonly blockSize: number;
  private readonly blockCount: number;
  private readonly retireMs: number;
  private readonly snaplen: number;
  /** On lo every frame passes twice (out, then in); keep the incoming copy, as libpcap does. */
  private readonly skipOutgoing: boolean;
  private cur = 0;
  private readonly kst = new Float64Array(3);
  /** The walk reads ahead of the frame in hand (page-ahead.ts). */
  private readonly ahead = new PageAhead();
  /** Frames whose VLAN tag the kernel moved into metadata are rebuilt here, tag reinserted (as libpcap does). */
  private vlanBuf = new Uint8Array(0); // allocated on the first tagged frame: most links have none
  private vlanView = new DataView(this.vlanBuf.buffer);

  constructor(iface: InterfaceInfo, o: CaptureOptions, index: number, bpf: Buffer | null) {
    super();
    this.index = index;
    this.linkType = iface.linkType;
    this.blockSize = o.blockSize;
    this.blockCount = o.blockCount;
    this.retireMs = o.retireMs;
    this.snaplen = o.snaplen;
    const join = o.fanout || o.streams > 1;
    const flags = o.fanoutDefrag ? PACKET_FANOUT_FLAG_DEFRAG : 0;
    // >>> 0: the defrag flag is bit 31, and -1 means no fanout.
    const fanout = join ? (o.fanoutGroup | ((FANOUT_MODES[o.fanoutMode] | flags) << 16)) >>> 0 : -1;
    const [h, ring, fd] = native.afpOpen(
      iface.name,
      iface.ifindex,
      o.blockSize,
      o.blockCount,
      o.frameSize,
      o.retireMs,
      bpf,
      o.promisc,
      iface.loopback, // PACKET_IGNORE_OUTGOING; a fanout group ignores it, hence also skipOutgoing
      fanout,
    );
    this.skipOutgoing = iface.loopback;
    this.handle = h;
    this.fd = fd;
    this.ring = ring;
    this.u8 = new Uint8Array(ring);
    this.view = new DataView(ring);
    this.status = new Uint32Array(ring);
    this.u16 = new Uint16Array(ring);
  }

  protected walk(sink: FrameSink): number {
    const view = this.view;
    const u8 = this.u8;
    const status = this.status;
    const u16 = this.u16;
    const bs = this.blockSize;
    const snaplen = this.snaplen;
    const linkType = this.linkType;
    let n = 0;
    let skipped = 0;
    for (;;) {
      const b = this.cur * bs;
      const si = (b + BLK_STATUS) >>> 2;
      // Acquire: the block's contents are read only after its status says USER.
      if ((Atomics.load(status, si) & TP_STATUS_USER) === 0) break;
      // Header fields through host-order typed arrays: the kernel writes them in host order, and
      // blocks and frames are 8-aligned. measured (bench/live-veth, walk): the same CPU per frame
      // as DataView.getUint32(LE) within noise; kept because it needs no endianness assumption.
      const num = status[(b + BLK_NUM_PKTS) >>> 2]!;
      let p = b + status[(b + BLK_FIRST) >>> 2]!;
      for (let i = 0; i < num && !this.closing; i++) {
        this.ahead.at(u8, p, b + bs);
        const w = p >>> 2;
        if (this.skipOutgoing && u8[p + PKT_SLL_PKTTYPE] === PACKET_OUTGOING) {
          skipped++;
          p += status[w]!;
          continue;
        }
        const snap = status[w + 3]!;
        const caplen = snap < snaplen ? snap : snaplen;
        if ((status[w + 5]! & TP_STATUS_VLAN_VALID) === 0) {
          sink.frame(u8, view, p + u16[(p + PKT_MAC) >>> 1]!, caplen, status[w + 4]!, linkType, status[w + 1]!, status[w + 2]!);
        } else {
          this.vlanFrame(sink, p, caplen, status[w + 5]!);
        }
        n++;
        p += status[w]!;
      }
      // Release: hand the whole block back once.
      Atomics.store(status, si, TP_STATUS_KERNEL);
      this.cur = this.cur + 1 === this.blockCount ? 0 : this.cur + 1;
      this.st.batches++;
      if (this.closing) break;
    }
    if (skipped > 0) this.st.outgoingSkipped += skipped;
    return n;
  }

  /** The kernel strips a received frame's 802.1Q tag into tp_vlan_tci; put it back so frames are byte-exact. Rare path. */
  private vlanFrame(sink: FrameSink, p: number, caplen: number, pst: number): void {
    const view = this.view;
    const mac = p + view.getUint16(p + PKT_MAC, LE);
    if (this.vlanBuf.length === 0) {
      this.vlanBuf = new Uint8Array(this.snaplen + 4);
      this.vlanView = new DataView(this.vlanBuf.buffer);
    }
    const out = this.vlanBuf;
    const cut = caplen < 12 ? caplen : 12;
    out.set(this.u8.subarray(mac, mac + cut), 0);
    let outLen = cut;
    if (caplen >= 12) {
      const tpid = (pst & TP_STATUS_VLAN_TPID_VALID) !== 0 ? view.getUint16(p + PKT_VLAN_TPID, LE) : 0x8100;
      this.vlanView.setUint16(12, tpid);
      this.vlanView.setUint16(14, view.getUint32(p + PKT_VLAN_TCI, LE) & 0xffff);
      const rest = Math.min(caplen - 12, out.length - 16);
      out.set(this.u8.subarray(mac + 12, mac + 12 + rest), 16);
      outLen = 16 + rest;
    }
    sink.frame(out, this.vlanView, 0, outLen, view.getUint32(p + PKT_LEN, LE) + 4, this.linkType,
      view.getUint32(p + PKT_SEC, LE), view.getUint32(p + PKT_NSEC, LE));
  }

  setFilter(program: Buffer | null): void {
    if (this.handle) native.afpSetFilter(this.handle, program);
  }

  /**
   * Closes the door, then empties the ring. A frame the kernel had queued when
   * the stream stopped used to be neither walked nor counted: the block it sat
   * in was retired after close. Now a `ret #0` filter stops new frames from
   * entering (a frame the filter rejects is not counted by the kernel either);
   * the block the kernel is filling is handed over when its retire timer
   * fires (within two retire periods: the timer retires a block it found
   * active at its previous tick), and every block handed over is walked as
   * usual. The wait ends when the block after the last walked one is the
   * kernel's and empty (its packet count is reset when the kernel opens it).
   */
  override async drain(): Promise<void> {
    if (this.stopped || this.handle === null) return;
    native.afpSetFilter(this.handle, DROP_ALL);
    const t0 = performance.now();
    const deadline = t0 + 2 * this.retireMs + DRAIN_MARGIN_MS;
    for (;;) {
      this.walkReady();
      if (this.stopped) return;
      const now = performance.now();
      if ((now - t0 >= DRAIN_SETTLE_MS && this.kernelBlockEmpty()) || now > deadline) break;
      await sleep(1);
    }
    this.walkReady();
    this.stats();
  }

  /** The block after the last one walked is the kernel's, holding no frame. */
  private kernelBlockEmpty(): boolean {
    const b = this.cur * this.blockSize;
    return (Atomics.load(this.status, (b + BLK_STATUS) >>> 2) & TP_STATUS_USER) === 0 && this.status[(b + BLK_NUM_PKTS) >>> 2] === 0;
  }

  stats(): StreamStats {
    if (this.handle && !this.stopped) {
      native.afpStats(this.handle, this.kst);
      this.st.kernelPackets += this.kst[0]!;
      this.st.kernelDrops += this.kst[1]!;
      this.st.freezes += this.kst[2]!;
    }
    return this.st;
  }

  protected release(): void {
    if (this.handle) native.afpClose(this.handle);
    this.handle = null;
    this.ring = new ArrayBuffer(0);
  }
}

export class AfPacketCapturer implements Capturer {
  readonly name = 'af_packet_v3';
  readonly version = '0.1.0';
  private iface: InterfaceInfo | null = null;
  private bpf: Buffer | null = null;
  private readonly open: (AfPacketStream | null)[];

  constructor(readonly options: CaptureOptions) {
    this.open = new Array<AfPacketStream | null>(options.streams).fill(null);
  }

  init(): void {
    validateAfPacketOptions(this.options);
    this.iface = interfaceInfo(this.options.iface);
    checkCaptureAllowed(`af_packet_v3 on ${this.iface.name}`);
    // Always a program: with no filter text it is just "ret #snaplen", so the kernel truncates.
    this.bpf = compileFilter(filterText(this.options.filter), this.options.snaplen, this.iface.dlt);
  }

  streams(): number {
    return this.options.streams;
  }

  capture(i: number): AfPacketStream {
    if (!this.iface) this.init();
    if (!Number.isInteger(i) || i < 0 || i >= this.options.streams) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `af_packet_v3: stream ${i} out of 0..${this.options.streams - 1}`);
    }
    const cur = this.open[i];
    if (cur && !cur.stopped) return cur;
    const s = new AfPacketStream(this.iface!, this.options, i, this.bpf);
    this.open[i] = s;
    return s;
  }

  setFilter(filter: string | StructuredFilter | null): void {
    if (!this.iface) this.init();
    const bpf = compileFilter(filterText(filter), this.options.snaplen, this.iface!.dlt); // throws before anything changes
    this.options.filter = filter;
    this.bpf = bpf;
    for (const s of this.open) if (s && !s.stopped) s.setFilter(bpf);
  }

  stats(): StreamStats[] {
    return this.open.map((s) => (s ? s.stats() : new StreamStats()));
  }

  health(): { ok: boolean; detail: string } {
    const live = this.open.filter((s) => s && !s.stopped).length;
    return { ok: live > 0, detail: `${live} of ${this.options.streams} streams open on ${this.options.iface}` };
  }

  start(): void {
    for (let i = 0; i < this.options.streams; i++) this.capture(i);
  }

  stop(): void {
    for (const s of this.open) s?.stop();
  }
}

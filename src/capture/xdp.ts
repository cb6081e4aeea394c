// xdp: AF_XDP sockets, one per RX queue (plugins/README.md: the NIC's RSS spreads
// flows over queues). libxdp loads its default program, which redirects each
// queue's frames into that queue's socket. Frames land in the UMEM, one
// ArrayBuffer JavaScript reads in place; each wakeup makes one native call
// per batch (xdpRecv), which also hands the previous batch back.
// Copy mode works on any driver (veth included); zero copy needs NIC support.
// Copy-mode AF_XDP has no kernel timestamp: frames carry the batch's wall time.
// Frames redirected to AF_XDP do not reach the host's network stack: this
// driver is for mirror/SPAN ports, not for an interface the host talks on,
// and init() refuses one that carries host traffic (iface.ts hostTraffic)
// unless `xdpSteal` says the operator means it.
// No filter can close the door before a stop: drain() walks what is ready and
// reads the counters (PolledStream); frames arriving after it are not ours.

import { native, type NativeHandle } from '../native.js';
import { OtusError } from '../util/errors.js';
import { type CaptureOptions, type Capturer, type FrameSink, StreamStats } from './capturer.js';
import type { StructuredFilter } from './filter.js';
import { hostTraffic, type InterfaceInfo, interfaceInfo } from './iface.js';
import { PolledStream } from './polled-stream.js';

const BATCH = 256;
const MODES = { auto: 0, native: 1, generic: 2 } as const;

export class XdpStream extends PolledStream {
  readonly linkType: number;
  private handle: NativeHandle | null;
  protected readonly fd: number;
  private readonly u8: Uint8Array;
  private readonly view: DataView;
  private readonly descs = new Uint32Array(2 * BATCH);
  private readonly ts = new Float64Array(2);
  private readonly snaplen: number;
  private readonly kst = new Float64Array(4);

  constructor(iface: InterfaceInfo, o: CaptureOptions, readonly index: number) {
    super();
    this.linkType = iface.linkType;
    this.snaplen = o.snaplen;
    try {
      const [h, umem, fd] = openRetryingBusy(iface.name, index, o);
      this.handle = h;
      this.fd = fd;
      this.u8 = new Uint8Array(umem);
      this.view = new DataView(umem);
    } catch (err) {
      const e = err as { errno?: number; message?: string };
      const why =
        e.errno === 95 /* EOPNOTSUPP */ && o.xdpZeroCopy
          ? 'the driver has no zero-copy AF_XDP support (drop zero copy)'
          : e.errno === 1 /* EPERM */
            ? 'needs CAP_NET_ADMIN and CAP_BPF (run as root)'
            : e.errno === 16 /* EBUSY */
              ? 'another XDP program or socket holds this queue'
              : 'the kernel or driver refused AF_XDP here';
      throw new OtusError('OTUS_ERR_UNSUPPORTED', `xdp driver on ${iface.name} queue ${index}: ${why} (${e.message}); use --driver af_packet_v3`);
    }
  }

  protected walk(sink: FrameSink): number {
    if (!this.handle) return 0;
    const descs = this.descs;
    const u8 = this.u8;
    const view = this.view;
    const snaplen = this.snaplen;
    const linkType = this.linkType;
    let total = 0;
    for (;;) {
      const n = native.xdpRecv(this.handle, descs, this.ts);
      if (n === 0) break;
      this.st.batches++;
      const sec = this.ts[0]!;
      const nsec = this.ts[1]!;
      for (let i = 0; i < n && !this.closing; i++) {
        const len = descs[2 * i + 1]!;
        sink.frame(u8, view, descs[2 * i]!, len < snaplen ? len : snaplen, len, linkType, sec, nsec);
      }
      total += n;
      if (this.closing) break;
    }
    return total;
  }

  setFilter(): void {
    throw new OtusError('OTUS_ERR_UNSUPPORTED', 'xdp driver: no kernel filter (the XDP program redirects every frame); use --driver af_packet_v3 to filter');
  }

  stats(): StreamStats {
    if (this.handle && !this.stopped) {
      native.xdpStats(this.handle, this.kst);
      this.st.kernelDrops = this.kst[0]! + this.kst[2]! + this.kst[3]!;
      this.st.kernelPackets = this.st.frames + this.st.kernelDrops;
    }
    return this.st;
  }

  protected release(): void {
    if (this.handle) native.xdpClose(this.handle);
    this.handle = null;
  }
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

const EBUSY = 16;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * The kernel unbinds a queue from a closed AF_XDP socket in deferred work
 * (xp_release_deferred), so reopening right after a stop can see EBUSY for a
 * few milliseconds: retry for up to a second before calling the queue taken.
 */
function openRetryingBusy(name: string, queue: number, o: CaptureOptions): [NativeHandle, ArrayBuffer, number] {
  for (let attempt = 0; ; attempt++) {
    try {
      return native.xdpOpen(name, queue, o.xdpFrames, o.xdpFrameSize, MODES[o.xdpMode], o.xdpZeroCopy);
    } catch (err) {
      if ((err as { errno?: number }).errno !== EBUSY || attempt >= 40) throw err;
      Atomics.wait(pause, 0, 0, 25); // control path only: a synchronous 25 ms sleep
    }
  }
}

export class XdpCapturer implements Capturer {
  readonly name = 'xdp';
  readonly version = '0.1.0';
  private iface: InterfaceInfo | null = null;
  private readonly open: (XdpStream | null)[];

  constructor(readonly options: CaptureOptions) {
    this.open = new Array<XdpStream | null>(options.streams).fill(null);
  }

  init(): void {
    const o = this.options;
    const why = native.xdpAvailable();
    if (why) throw new OtusError('OTUS_ERR_UNSUPPORTED', `xdp driver: ${why}; use --driver af_packet_v3`);
    if (o.filter !== null) this.setFilter(o.filter);
    if (!isPow2(o.xdpFrames) || o.xdpFrames < 64) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `xdp frames: a power of two >= 64, got ${o.xdpFrames}`);
    if (o.xdpFrameSize !== 2048 && o.xdpFrameSize !== 4096) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `xdp frame size: 2048 or 4096, got ${o.xdpFrameSize}`);
    if (!(o.xdpMode in MODES)) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `xdp mode: auto, native or generic, got ${o.xdpMode}`);
    this.iface = interfaceInfo(o.iface);
    if (this.iface.linkType !== 1) throw new OtusError('OTUS_ERR_UNSUPPORTED', `xdp driver: ${o.iface} is not an Ethernet device; use --driver af_packet_v3`);
    const host = hostTraffic(this.iface);
    if (host !== null && !o.xdpSteal) {
      throw new OtusError(
        'OTUS_ERR_BAD_ARGUMENT',
        `xdp driver on ${o.iface}: ${host}, so it carries this host's own traffic, and AF_XDP would take those frames away from the host's network stack ` +
          `(its sockets would stop receiving them); capture a mirror port, use --driver af_packet_v3, or say it is intended with --xdp-steal (task: capture.xdp_steal: true)`,
      );
    }
    if (o.streams > this.iface.rxQueues) {
      throw new OtusError(
        'OTUS_ERR_UNSUPPORTED',
        `xdp driver: ${o.streams} streams asked, ${o.iface} has ${this.iface.rxQueues} RX queue(s) (one AF_XDP socket per queue); use fewer workers or --driver af_packet_v3`,
      );
    }
  }

  streams(): number {
    return this.options.streams;
  }

  capture(i: number): XdpStream {
    if (!this.iface) this.init();
    if (!Number.isInteger(i) || i < 0 || i >= this.options.streams) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `xdp: stream ${i} out of 0..${this.options.streams - 1}`);
    const cur = this.open[i];
    if (cur && !cur.stopped) return cur;
    const s = new XdpStream(this.iface!, this.options, i);
    this.open[i] = s;
    return s;
  }

  setFilter(filter: string | StructuredFilter | null): void {
    if (filter !== null && filter !== '') {
      throw new OtusError('OTUS_ERR_UNSUPPORTED', 'xdp driver: no kernel filter (the XDP program redirects every frame); use --driver af_packet_v3 to filter');
    }
  }

  stats(): StreamStats[] {
    return this.open.map((s) => (s ? s.stats() : new StreamStats()));
  }

  health(): { ok: boolean; detail: string } {
    const live = this.open.filter((s) => s && !s.stopped).length;
    return { ok: live > 0, detail: `${live} of ${this.options.streams} AF_XDP sockets open on ${this.options.iface}` };
  }

  start(): void {
    for (let i = 0; i < this.options.streams; i++) this.capture(i);
  }

  stop(): void {
    for (const s of this.open) s?.stop();
  }
}

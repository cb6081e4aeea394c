// pcap: libpcap live capture, one stream, for compatibility and low rates
// (plugins/README.md). Immediate mode, nanosecond timestamps, non-blocking; the
// selectable fd is polled from the event loop and each wakeup makes one
// native call (pcapDispatch) that copies the ready frames into one reused
// buffer, which JavaScript then walks. More pipelines than one stream are
// fed by user-space flow-hash dispatch (flowhash.ts).

import { endianness } from 'node:os';
import { native, type NativeHandle } from '../native.js';
import { OtusError } from '../util/errors.js';
import { type CaptureOptions, type Capturer, type FrameSink, StreamStats } from './capturer.js';
import { compileFilter, filterText, type StructuredFilter } from './filter.js';
import { checkCaptureAllowed, type InterfaceInfo, interfaceInfo } from './iface.js';
import { PolledStream } from './polled-stream.js';

const LE = endianness() === 'LE';

export class PcapStream extends PolledStream {
  readonly index = 0;
  readonly linkType: number;
  private handle: NativeHandle | null;
  protected readonly fd: number;
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private readonly kst = new Float64Array(3);

  constructor(iface: InterfaceInfo, o: CaptureOptions, text: string) {
    super();
    const [h, fd, dlt] = native.pcapOpen(iface.name, o.snaplen, o.promisc, o.bufferBytes, text === '' ? null : text);
    this.handle = h;
    this.fd = fd;
    // libpcap reports DLT values; the two we accept map to LINKTYPE_ETHERNET / LINKTYPE_RAW.
    this.linkType = dlt === 1 ? 1 : dlt === 12 || dlt === 14 ? 101 : dlt;
    this.buf = new Uint8Array(Math.max(1 << 20, 4 * (o.snaplen + 20)));
    this.view = new DataView(this.buf.buffer);
  }

  protected walk(sink: FrameSink): number {
    if (!this.handle) return 0;
    const view = this.view;
    const buf = this.buf;
    const linkType = this.linkType;
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = native.pcapDispatch(this.handle, buf);
      } catch (e) {
        // The device went down or away ("The interface went down"): the stream fails as a socket error would.
        this.fail(e instanceof Error ? e.message : String(e));
        break;
      }
      if (n === 0 || this.failure !== null) break;
      this.st.batches++;
      let p = 0;
      for (let i = 0; i < n && !this.closing; i++) {
        const caplen = view.getUint32(p + 8, LE);
        sink.frame(buf, view, p + 16, caplen, view.getUint32(p + 12, LE), linkType, view.getUint32(p, LE), view.getUint32(p + 4, LE));
        p += (16 + caplen + 3) & ~3;
      }
      total += n;
      if (this.closing) break;
    }
    return total;
  }

  setFilter(): void {
    throw new OtusError('OTUS_ERR_UNSUPPORTED', 'pcap driver: the filter is set when the stream opens (use PcapCapturer.setFilter before capture())');
  }

  stats(): StreamStats {
    if (this.handle && !this.stopped && this.failure === null) {
      try {
        native.pcapStats(this.handle, this.kst);
      } catch {
        return this.st; // the device is gone: its last totals stand
      }
      // libpcap's counters are totals since open.
      this.st.kernelPackets = this.kst[0]!;
      this.st.kernelDrops = this.kst[1]!;
      this.st.ifDrops = this.kst[2]!;
    }
    return this.st;
  }

  protected release(): void {
    if (this.handle) native.pcapClose(this.handle);
    this.handle = null;
  }
}

export class PcapCapturer implements Capturer {
  readonly name = 'pcap';
  readonly version = '0.1.0';
  private iface: InterfaceInfo | null = null;
  private text = '';
  private stream: PcapStream | null = null;

  constructor(readonly options: CaptureOptions) {}

  init(): void {
    const o = this.options;
    if (o.streams !== 1) {
      throw new OtusError(
        'OTUS_ERR_UNSUPPORTED',
        `pcap driver: one stream only (asked for ${o.streams}); feed several pipelines through FlowDispatcher, or use --driver af_packet_v3 for kernel fanout`,
      );
    }
    if (!Number.isInteger(o.snaplen) || o.snaplen < 64 || o.snaplen > 262144) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `pcap snaplen: expected an integer in 64..262144, got ${o.snaplen}`);
    }
    this.iface = interfaceInfo(o.iface);
    checkCaptureAllowed(`pcap on ${this.iface.name}`);
    this.text = filterText(o.filter);
    compileFilter(this.text, o.snaplen, this.iface.dlt); // bad text fails here, before anything opens
  }

  streams(): number {
    return 1;
  }

  capture(i: number): PcapStream {
    if (!this.iface) this.init();
    if (i !== 0) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `pcap: stream ${i} out of 0..0`);
    if (this.stream && !this.stream.stopped) return this.stream;
    this.stream = new PcapStream(this.iface!, this.options, this.text);
    return this.stream;
  }

  setFilter(filter: string | StructuredFilter | null): void {
    if (!this.iface) this.init();
    const text = filterText(filter);
    compileFilter(text, this.options.snaplen, this.iface!.dlt);
    if (this.stream && !this.stream.stopped) {
      throw new OtusError('OTUS_ERR_UNSUPPORTED', 'pcap driver: stop the stream before changing its filter');
    }
    this.options.filter = filter;
    this.text = text;
  }

  stats(): StreamStats[] {
    return [this.stream ? this.stream.stats() : new StreamStats()];
  }

  health(): { ok: boolean; detail: string } {
    const ok = !!this.stream && !this.stream.stopped;
    return { ok, detail: ok ? `pcap open on ${this.options.iface}` : 'not capturing' };
  }

  start(): void {
    this.capture(0);
  }

  stop(): void {
    this.stream?.stop();
  }
}

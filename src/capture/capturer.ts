// The capture-driver interface (plugins/README.md). A driver opens N parallel
// streams on one interface (AF_PACKET fanout members, XDP queues; pcap has
// one); each stream hands frames to a FrameSink in place, from memory the
// driver owns (the mmap'd ring, or one reused batch buffer). Nothing is
// allocated per frame.

import type { StructuredFilter } from './filter.js';

/** Receives every frame of one stream. The bytes are valid only during the call. */
export interface FrameSink {
  frame(buf: Uint8Array, view: DataView, off: number, caplen: number, len: number, linkType: number, sec: number, nsec: number): void;
  /** Called after each batch (ring block walk, pcap dispatch): a place to flush output. */
  batchEnd?(): void;
  /** The stream failed (interface gone, socket error) and stopped reading; called once. */
  error?(stream: number, message: string): void;
  /** The source has no more frames (the file driver at end of file); called once. */
  end?(stream: number): void;
}

/** Counters of one stream. Kernel counters are accumulated here (reading them resets them in the kernel). */
export class StreamStats {
  /** Frames handed to the sink. */
  frames = 0;
  /** Ring blocks (af_packet_v3) or dispatch batches (pcap) walked. */
  batches = 0;
  /** Frames the kernel accepted after the filter, drops included (tp_packets, ps_recv). */
  kernelPackets = 0;
  /** Frames the kernel dropped because the ring (buffer) was full (tp_drops, ps_drop). */
  kernelDrops = 0;
  /** Times the kernel froze the ring queue because it was full (tp_freeze_q_cnt; af_packet_v3 only). */
  freezes = 0;
  /** Frames the interface dropped (ps_ifdrop; pcap only). */
  ifDrops = 0;
  /**
   * af_packet_v3 on lo: outgoing copies skipped (each packet passes lo twice, as
   * libpcap keeps only the incoming one). A fanout socket ignores
   * PACKET_IGNORE_OUTGOING, so the kernel counts both copies in kernelPackets:
   * there kernelPackets = frames + outgoingSkipped + kernelDrops.
   */
  outgoingSkipped = 0;
}

export interface CaptureStream {
  readonly index: number;
  /** LINKTYPE_* of the frames. */
  readonly linkType: number;
  /** Starts calling `sink` from the event loop whenever frames are ready; never blocks. */
  start(sink: FrameSink): void;
  /** Stops reading (the kernel keeps filling the ring and counts drops once it is full). */
  pause(): void;
  resume(): void;
  /** Walks whatever is ready now; returns frames delivered. Called by the poll; exposed for tests. */
  walkReady(): number;
  /**
   * The first half of a stop that loses nothing uncounted: takes no new frames
   * (af_packet_v3: a drop-everything filter, so nothing new enters the ring and
   * the kernel counts nothing more), waits until the kernel has handed over its
   * partly filled block, walks every frame still in the ring through the sink
   * as usual (batchEnd per block), reads the kernel's counters, and resolves.
   * Afterwards frames delivered + kernel drops = kernel packets. stop() then
   * closes. Resolves at once on a stopped stream.
   */
  drain(): Promise<void>;
  /** Replaces the stream's kernel filter (compiled BPF, null = none). */
  setFilter(program: Buffer | null): void;
  /** Reads and accumulates the kernel counters. Safe after stop() (returns the last totals). */
  stats(): StreamStats;
  /** Releases the socket and its memory. Idempotent; safe inside sink.frame(). */
  stop(): void;
  readonly stopped: boolean;
  /** Why the stream stopped reading on its own (socket error), or null. */
  readonly failure: string | null;
}

export type FanoutMode = 'hash' | 'cpu' | 'lb' | 'qm';

export interface CaptureOptions {
  iface: string;
  /** Parallel streams (fanout members). */
  streams: number;
  snaplen: number;
  promisc: boolean;
  /** Raw BPF text or a structured task filter; null = everything. */
  filter: string | StructuredFilter | null;
  /** af_packet_v3 ring geometry. */
  blockSize: number;
  blockCount: number;
  frameSize: number;
  retireMs: number;
  fanoutMode: FanoutMode;
  fanoutGroup: number;
  fanoutDefrag: boolean;
  /** Join the fanout group even with one stream (other processes hold the other members). */
  fanout: boolean;
  /** pcap driver: kernel buffer bytes. */
  bufferBytes: number;
  /** xdp driver: UMEM frames per socket (power of two) and their size. */
  xdpFrames: number;
  xdpFrameSize: number;
  /** xdp driver: auto lets libxdp choose (native, else generic). */
  xdpMode: 'auto' | 'native' | 'generic';
  xdpZeroCopy: boolean;
  /**
   * xdp driver: capture even on an interface that carries this host's traffic
   * (lo, an address, a bridge or bond port). AF_XDP takes the frames away from
   * the host's stack, so that traffic stops reaching its sockets: refused unless set.
   */
  xdpSteal: boolean;
  /** file driver: pace frames by their recorded timestamps. */
  realtime: boolean;
}

export function defaultCaptureOptions(iface: string): CaptureOptions {
  return {
    iface,
    streams: 1,
    snaplen: 262144,
    promisc: true,
    filter: null,
    blockSize: 1 << 20,
    blockCount: 32,
    frameSize: 2048,
    retireMs: 10,
    fanoutMode: 'hash',
    fanoutGroup: process.pid & 0xffff,
    fanoutDefrag: true,
    fanout: false,
    bufferBytes: 32 << 20,
    xdpFrames: 4096,
    xdpFrameSize: 4096,
    xdpMode: 'auto',
    xdpZeroCopy: false,
    xdpSteal: false,
    realtime: false,
  };
}

/** A capture driver (plugin): metadata, lifecycle, N streams. */
export interface Capturer {
  readonly name: string;
  readonly version: string;
  /** Validates options and the interface; opens nothing. */
  init(): void;
  /** Number of parallel streams this driver provides. */
  streams(): number;
  /** Opens stream i (its socket, ring, filter). */
  capture(i: number): CaptureStream;
  /** Compiles and attaches a new filter on every open stream; throws OTUS_ERR_FILTER and changes nothing on bad text. */
  setFilter(filter: string | StructuredFilter | null): void;
  /** Per-stream counters of the streams opened so far. */
  stats(): StreamStats[];
  health(): { ok: boolean; detail: string };
  /** Opens all streams lazily opened by capture(); stop() closes them all. */
  start(): void;
  stop(): void;
}

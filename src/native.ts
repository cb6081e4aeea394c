// Loads the C++ addon (native/). It only makes syscalls; see native/otus.cc.
import { createRequire } from 'node:module';

export interface Native {
  /** Private copy-on-write mapping of a whole file; unmapped when collected. */
  mapFile(path: string): ArrayBuffer;
  /** Pin the calling process's main thread to one CPU. */
  setAffinity(cpu: number): void;
  /** CPU time of the calling thread, in nanoseconds. */
  threadCpuNs(): number;
  /** Zeroed anonymous memory starting on a page boundary (tables laid out in cache lines); unmapped when collected. */
  pageBuffer(bytes: number): ArrayBuffer;

  // Shared memory and wakeups (native/shm.cc; src/shm/ lays the segments out).
  /**
   * shm_open + mmap(MAP_SHARED) of a named segment: create exclusively with `size` bytes,
   * or open an existing one (size 0: whatever size it has). mirrorFrom > 0 (page-aligned)
   * maps [mirrorFrom, size) a second time right after the segment. Unmapped when collected.
   */
  shmOpen(name: string, size: number, create: boolean, mirrorFrom: number, populate?: boolean): ArrayBuffer;
  /** shm_unlink; false if the segment did not exist. */
  shmUnlink(name: string): boolean;
  /** Names (with the leading '/') of the segments in /dev/shm starting with prefix. */
  shmList(prefix: string): string[];
  /** A FIFO for wakeups: create (replacing any at `path`, 0600) and open it read-write, or open an existing one write-only; non-blocking. Returns the fd. */
  fifoOpen(path: string, create: boolean): number;
  /** Writes one byte; false when the FIFO is full (a wakeup is pending) or has no reader. */
  fdSignal(fd: number): boolean;
  /** Reads until empty; returns the bytes read. */
  fdDrain(fd: number): number;

  // The daemon (native/sys.cc; src/supervisor/peer.ts, src/supervisor/notify.ts).
  /** getsockopt(SO_PEERCRED) on a connected Unix stream socket: the peer's [pid, uid, gid] when it connected. Throws OTUS_ERR_SYSCALL. */
  peerCred(fd: number): [pid: number, uid: number, gid: number];
  /**
   * One datagram to a service manager's notification socket (sd_notify(3)) on a fresh
   * SOCK_DGRAM socket, closed afterwards. `path`: absolute, or '@name' for an abstract
   * address. Never throws: false when it could not be sent.
   */
  notifySend(path: string, text: string): boolean;

  // The kafka reporter's producer (native/kafka.cc; src/sender-proc/kafka.ts). Absent when the addon was built without librdkafka's header.
  /** dlopen()s librdkafka at `lib` (once per process) and makes a producer; conf is name, value, name, value... Throws with librdkafka's words (a bad property: "name: why"). */
  kafkaOpen?(lib: string, conf: string[]): NativeHandle;
  /** A topic handle; returns its index for kafkaProduce. */
  kafkaTopic?(h: NativeHandle, name: string): number;
  /**
   * Queues one message (librdkafka copies it): value is bytes [off, off + len) of `value`; key and headers come from `stage`
   * (u32 key length, 0xffffffff for none; key; u16 header count; per header u16 name length, name, u32 value length, value; little-endian).
   * Returns 0 or librdkafka's error code (-184: queue full).
   */
  kafkaProduce?(h: NativeHandle, topic: number, value: Uint8Array, off: number, len: number, stage: Uint8Array): number;
  /** Serves callbacks; returns what they brought since the last call, or undefined when nothing. acked: delivered messages; failed: error name, count, ... */
  kafkaPoll?(h: NativeHandle): { acked: number; failed: (string | number)[]; stats: string | null; error: string | null; log: string | null } | undefined;
  /** rd_kafka_flush for at most `ms` (sends lingering batches at once); returns rd_kafka_outq_len: messages queued or in flight, and events not yet served. */
  kafkaFlush?(h: NativeHandle, ms: number): number;
  /** Gives up every message queued or in flight (their delivery reports say _PURGE_QUEUE / _PURGE_INFLIGHT). */
  kafkaPurge?(h: NativeHandle): void;
  /** librdkafka's name of an error code (`_QUEUE_FULL`, `MSG_SIZE_TOO_LARGE`). */
  kafkaErrName?(code: number): string;
  /** Destroys the producer. Idempotent. */
  kafkaClose?(h: NativeHandle): void;

  // Live capture (native/afpacket.cc, native/pcap.cc; src/capture/ drives them).
  /**
   * AF_PACKET TPACKET_V3 socket bound to `ifindex`, filter attached before bind.
   * fanout: -1 for none, else group | (mode | flags) << 16. Returns [handle, ring, fd];
   * the ring is the whole mmap'd PACKET_RX_RING, detached by afpClose.
   */
  afpOpen(
    name: string,
    ifindex: number,
    blockSize: number,
    blockCount: number,
    frameSize: number,
    retireMs: number,
    bpf: Buffer | null,
    promisc: boolean,
    ignoreOutgoing: boolean,
    fanout: number,
  ): [NativeHandle, ArrayBuffer, number];
  /** Replaces the socket's filter (null removes it). */
  afpSetFilter(h: NativeHandle, bpf: Buffer | null): void;
  /** tp_packets (drops included), tp_drops, tp_freeze_q_cnt since the last call (reading resets them). */
  afpStats(h: NativeHandle, out: Float64Array): void;
  /** Detaches the ring ArrayBuffer, unmaps it, closes the socket. Idempotent. */
  afpClose(h: NativeHandle): void;
  /** uv_poll on fd: callback(status) whenever it is readable. */
  pollStart(fd: number, cb: (status: number) => void): NativeHandle;
  /** Idempotent; the fd may be closed right after. */
  pollStop(h: NativeHandle): void;
  /** pcap_compile on pcap_open_dead(linkType, snaplen): struct sock_filter[] bytes. Throws {code: 'OTUS_ERR_FILTER', pcapError}. */
  compileBpf(text: string, snaplen: number, linkType: number): Buffer;
  /** libpcap live capture, immediate mode, nanosecond timestamps, non-blocking. Returns [handle, selectable fd, linktype]. */
  pcapOpen(iface: string, snaplen: number, promisc: boolean, bufferBytes: number, filter: string | null): [NativeHandle, number, number];
  /** Copies the frames pcap_dispatch has into buf (u32 sec, nsec, caplen, len, bytes, pad to 4); returns how many. */
  pcapDispatch(h: NativeHandle, buf: Uint8Array): number;
  /** ps_recv, ps_drop, ps_ifdrop since open. */
  pcapStats(h: NativeHandle, out: Float64Array): void;
  pcapClose(h: NativeHandle): void;
  /** '' when AF_XDP is built in, else why not. */
  xdpAvailable(): string;
  /** AF_XDP socket on one RX queue (libxdp's default program); mode 0 auto, 1 native, 2 generic. Returns [handle, UMEM, fd]. */
  xdpOpen(iface: string, queue: number, frames: number, frameSize: number, mode: number, zeroCopy: boolean): [NativeHandle, ArrayBuffer, number];
  /** Returns the last batch to the fill ring, then lists up to descs.length/2 new frames as (UMEM offset, length); ts gets the batch's wall time. */
  xdpRecv(h: NativeHandle, descs: Uint32Array, ts: Float64Array): number;
  /** rx_dropped, rx_invalid_descs, rx_ring_full, rx_fill_ring_empty_descs (totals). */
  xdpStats(h: NativeHandle, out: Float64Array): void;
  /** Detaches the UMEM ArrayBuffer, deletes socket and UMEM (libxdp unloads its program with the last socket). Idempotent. */
  xdpClose(h: NativeHandle): void;
}

/** An opaque native object (napi External). */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

const require = createRequire(import.meta.url);
// dist/src/native.js -> ../../native/build/Release
export const native: Native = require('../../native/build/Release/otus_native.node');

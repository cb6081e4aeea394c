// One captured frame as a capture source hands it to the decoder. A source
// owns a single Frame object and overwrites it on every next(): nothing is
// allocated per frame, and the bytes are read in place from `buf`.

export class Frame {
  /** Bytes that hold the frame (a whole file mapping or a ring block). */
  buf: Uint8Array = new Uint8Array(0);
  /** DataView over the same memory as `buf` (same byteOffset). */
  view: DataView = new DataView(new ArrayBuffer(0));
  /** Offset of the frame's first byte in `buf`. */
  off = 0;
  /** Bytes captured (present in `buf`). */
  caplen = 0;
  /** Length of the frame on the wire. */
  len = 0;
  /** LINKTYPE_* value (https://www.tcpdump.org/linktypes.html). */
  linkType = 0;
  /** Interface index within the capture (pcapng IDB number; 0 for pcap). */
  ifIndex = 0;
  /** False when the source has no timestamp (pcapng Simple Packet Block). */
  hasTs = false;
  /** Seconds since the Unix epoch. */
  tsSec = 0;
  /** Nanoseconds within the second, 0..999999999. */
  tsNsec = 0;
  /** Fractional digits the source's resolution warrants: 6 (µs) or 9 (ns); 0..9. */
  tsDigits = 6;
}

// Classic pcap reader (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html).
// Reads records in place from the file's bytes: next() overwrites the one
// Frame and allocates nothing. A malformed or truncated tail ends the read
// with `endReason`; next() never throws.

import { Frame } from './frame.js';

/** Largest caplen accepted: libpcap's largest per-link-type maximum (D-Bus, 128 MiB). */
export const MAX_CAPLEN = 128 * 1024 * 1024;

export const PCAP_HEADER_LEN = 24;

/** What the first four bytes (read big-endian) say about a pcap file, or null. */
export function pcapMagic(be32: number): { le: boolean; nanos: boolean; modified: boolean } | null {
  switch (be32) {
    case 0xa1b2c3d4: return { le: false, nanos: false, modified: false };
    case 0xd4c3b2a1: return { le: true, nanos: false, modified: false };
    case 0xa1b23c4d: return { le: false, nanos: true, modified: false };
    case 0x4d3cb2a1: return { le: true, nanos: true, modified: false };
    // Kuznetzov's "modified" pcap (old Red Hat tcpdump): µs, 8 more record bytes.
    case 0xa1b2cd34: return { le: false, nanos: false, modified: true };
    case 0x34cdb2a1: return { le: true, nanos: false, modified: true };
    default: return null;
  }
}

export class PcapReader {
  readonly format = 'pcap' as const;
  readonly frame = new Frame();
  framesRead = 0;
  /** Always 0: pcap has no interface table to miss. */
  framesSkipped = 0;
  bytesRead = PCAP_HEADER_LEN;
  readonly fileSize: number;
  endReason: string | null = null;

  private readonly le: boolean;
  /** Units per second of the record's sub-second field: 1e6 (µs) or 1e9 (ns). */
  private readonly fracPerSec: number;
  /** Nanoseconds per sub-second unit: 1000 or 1. */
  private readonly nsPerFrac: number;
  private readonly recHdrLen: number;
  private done = false;

  /** The caller has checked the magic and that the 24-byte header is present. */
  constructor(buf: Uint8Array, magic: { le: boolean; nanos: boolean; modified: boolean }) {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.fileSize = buf.byteLength;
    this.le = magic.le;
    this.fracPerSec = magic.nanos ? 1e9 : 1e6;
    this.nsPerFrac = magic.nanos ? 1 : 1000;
    this.recHdrLen = magic.modified ? 24 : 16;
    // Everything that is per file is set once; next() writes only per-record fields.
    const f = this.frame;
    f.buf = buf;
    f.view = view;
    f.linkType = view.getUint16(20 + (magic.le ? 0 : 2), magic.le); // low 16 bits of `network`; the rest is FCS info
    f.ifIndex = 0;
    f.hasTs = true;
    f.tsDigits = magic.nanos ? 9 : 6;
  }

  /** The next next() reads the record at byte `pos` (an offset an earlier read reported in bytesRead). */
  seek(pos: number): void {
    this.bytesRead = pos;
  }

  next(): boolean {
    if (this.done) return false;
    const pos = this.bytesRead;
    const left = this.fileSize - pos;
    if (left === 0) return this.end(null);
    const hdr = this.recHdrLen;
    if (left < hdr) return this.end(`truncated record header at byte ${pos}`);
    const f = this.frame;
    const v = f.view;
    const le = this.le;
    const caplen = v.getUint32(pos + 8, le);
    if (caplen > MAX_CAPLEN) return this.end(`absurd caplen ${caplen} at byte ${pos}`);
    if (caplen > left - hdr) return this.end(`truncated record at byte ${pos} (caplen ${caplen}, ${left - hdr} bytes left)`);
    let sec = v.getUint32(pos, le); // unsigned: files written after 2038 stay valid
    let frac = v.getUint32(pos + 4, le);
    if (frac >= this.fracPerSec) {
      // Out-of-range sub-second field (seen in the wild): carry whole seconds so
      // tsNsec stays within 0..999999999 as Frame promises.
      const carry = Math.floor(frac / this.fracPerSec);
      sec += carry;
      frac -= carry * this.fracPerSec;
    }
    f.off = pos + hdr;
    f.caplen = caplen;
    f.len = v.getUint32(pos + 12, le);
    f.tsSec = sec;
    f.tsNsec = frac * this.nsPerFrac;
    this.bytesRead = pos + hdr + caplen;
    this.framesRead++;
    return true;
  }

  private end(reason: string | null): false {
    this.done = true;
    this.endReason = reason;
    return false;
  }
}

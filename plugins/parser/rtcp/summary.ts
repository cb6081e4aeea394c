// What a compound packet's SRs and report blocks say, into the task's media
// table (src/shm/media.ts), where the rtp parser's `rtp.stats` reports read
// it (README.md, "RTCP in rtp.stats"). Per SR: its NTP time's middle 32
// bits and capture time, under its sender's SSRC. Per report block (RFC
// 3550 §6.4.1): under the source it is about ("about": the receiver's
// view of that stream) and under its sender ("by": what that side
// receives). The round trip, as tshark's rtcp.roundtrip-delay: the block's
// capture time minus that of the SR its LSR names, minus DLSR: between the
// capture point and the reporter, and back. Allocates nothing.

import type { MediaTable } from '../../../src/shm/media.js';

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export class RtcpSummaryStats {
  /** Report blocks written. */
  blocks = 0;
  /** Of those, with a round trip (their LSR matched an SR seen). */
  roundTrips = 0;
  /** Compounds whose reports were dropped: the table's writer lock stayed busy. */
  busy = 0;
}

export class RtcpSummaryWriter {
  readonly stats = new RtcpSummaryStats();

  constructor(readonly table: MediaTable) {}

  /** The validated compound b[o, o + len) captured at sec.nsec, of the call whose call-id hashes to `call` (0 none). */
  write(b: Uint8Array, o: number, len: number, sec: number, nsec: number, call: number): void {
    // Nothing to write without an SR or RR: skip the lock.
    let any = false;
    const end = o + len;
    for (let p = o; p + 4 <= end; p += 4 + 4 * ((b[p + 2] << 8) | b[p + 3])) if (b[p + 1] === 200 || b[p + 1] === 201) any = true;
    if (!any) return;
    const t = this.table;
    if (!t.lock()) {
      this.stats.busy++;
      return;
    }
    t.setNow(sec, nsec);
    try {
      for (let p = o; p + 4 <= end; ) {
        const pe = p + 4 + 4 * ((b[p + 2] << 8) | b[p + 3]);
        const pt = b[p + 1];
        if ((pt === 200 || pt === 201) && pe - p >= 8) this.report(b, p, pe, pt === 200, call);
        p = pe;
      }
    } finally {
      t.unlock();
    }
  }

  private report(b: Uint8Array, p: number, pe: number, sr: boolean, call: number): void {
    const t = this.table;
    const sender = u32(b, p + 4);
    let q = p + 8;
    if (sr) {
      if (q + 20 > pe) return;
      const e = t.entry(sender, call);
      // NTP seconds' low 16 bits and the fraction's high 16 (RFC 3550 §6.4.1, LSR).
      t.setSr(e, ((b[q + 2] << 24) | (b[q + 3] << 16) | (b[q + 4] << 8) | b[q + 5]) >>> 0);
      t.done(e);
      q += 20;
    }
    const rc = b[p] & 31;
    for (let i = 0; i < rc && q + 24 <= pe; i++, q += 24) {
      const source = u32(b, q);
      const fraction = b[q + 4];
      const cumulative = ((b[q + 5] << 24) | (b[q + 6] << 16) | (b[q + 7] << 8)) >> 8;
      const jitter = u32(b, q + 12);
      const lsr = u32(b, q + 16);
      const dlsr = u32(b, q + 20);
      const e = t.entry(source, call);
      const rtt = lsr !== 0 && t.roundTrip(e, lsr, dlsr);
      if (!rtt) t.noRoundTrip();
      t.setBlock(e, true, sender, fraction, cumulative, jitter);
      t.done(e);
      const s = t.entry(sender, call);
      t.setBlock(s, false, source, fraction, cumulative, jitter);
      t.done(s);
      this.stats.blocks++;
      if (rtt) this.stats.roundTrips++;
    }
  }
}

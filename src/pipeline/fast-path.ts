// The pipeline's fast path (plugins/README.md: a known media flow is looked up,
// labelled and sent on, ~100 ns). Most frames of a VoIP task are RTP of
// calls the registry knows, in the simplest shape: Ethernet (at most one
// 802.1Q tag), IPv4 without options or fragmentation, UDP. For those the generic path (decoder →
// DecodedPacket → parser → OutputRecord → encodeWire) copies each field
// three times; a parser with a fast path (Parser.fastFrame) writes the wire
// record straight into the batch from the frame instead.
//
// FastFrame.parse checks the shape in the frame's bytes and finds the UDP
// payload; anything else (QinQ, tunnels, IPv6, options, fragments, a cut
// datagram) is left to the decoder. The parser looks at the
// payload first and calls load() for the addresses, ports and MACs only
// when it takes the frame: SIP and other UDP pay for the check alone.

import { Frame } from '../capture-file/frame.js';
import type { KeyTracker } from './label-keys.js';

/** Ethernet II (+ an 802.1Q tag), then IPv4 with a 20-byte header (version 4, IHL 5), then UDP: from the IPv4 header. */
const ETH = 14;
const TAG = 4;
const L4 = 20;
const PAYLOAD = L4 + 8;

/** An Ethernet frame (a Frame of link type 1) in the fast shape, with what its record's envelope needs. */
export class FastFrame extends Frame {
  /** Offset of the IPv4 header in buf. */
  l3 = 0;
  // Read by load():
  /** Addresses as big-endian reads (the decoder's src4/dst4) and as the little-endian words the wire record stores. */
  src4 = 0;
  dst4 = 0;
  srcWord = 0;
  dstWord = 0;
  sport = 0;
  dport = 0;
  ttl = 0;
  /** The 802.1Q tag's VLAN id, -1 untagged. */
  vlan = -1;
  /** Source then destination MAC as three little-endian words (OutputRecord.setMacs). */
  mac0 = 0;
  mac1 = 0;
  mac2 = 0;
  /** The UDP payload: buf[payloadOff, payloadOff + payloadLen). */
  payloadOff = 0;
  payloadLen = 0;
  /**
   * Labels the task's processors add to every fast record (their
   * fastVerdict), after the parser's: their entries, and their key ids in
   * order. Set once by the pipeline (fastPlan).
   */
  extra: Int32Array = new Int32Array(0);
  extraIds: Int32Array = new Int32Array(0);

  /** Writes the extra labels at W[j...], noting their keys; returns the word after them. */
  writeExtra(W: Int32Array, j: number, keys: KeyTracker): number {
    const E = this.extra;
    for (let i = 0; i < E.length; i++) W[j + i] = E[i];
    const ids = this.extraIds;
    for (let i = 0; i < ids.length; i++) keys.use(ids[i]);
    return j + E.length;
  }

  /**
   * Takes an Ethernet frame (link type 1) captured whole if it has the fast
   * shape and is not a UDP tunnel (`tunnelPorts`: the decoder's table);
   * false leaves it to the decoder.
   */
  parse(
    buf: Uint8Array,
    view: DataView,
    off: number,
    caplen: number,
    len: number,
    tsSec: number,
    tsNsec: number,
    hasTs: boolean,
    tsDigits: number,
    tunnelPorts: Uint8Array,
  ): boolean {
    if (caplen !== len || caplen < ETH + TAG + PAYLOAD) return false;
    let l3 = off + ETH;
    if (buf[off + 12] === 0x81 && buf[off + 13] === 0) {
      if (buf[off + 16] !== 8 || buf[off + 17] !== 0) return false;
      l3 += TAG;
    } else if (buf[off + 12] !== 8 || buf[off + 13] !== 0) return false;
    if (buf[l3] !== 0x45 || buf[l3 + 9] !== 17) return false;
    const total = view.getUint16(l3 + 2);
    // Not a fragment (MF clear, offset 0), the datagram within the frame (Ethernet padding may follow), and the UDP length exact.
    if ((view.getUint16(l3 + 6) & 0x3fff) !== 0 || total < 28 || l3 - off + total > caplen || view.getUint16(l3 + L4 + 4) !== total - 20) return false;
    if (tunnelPorts[view.getUint16(l3 + L4 + 2)] !== 0) return false;
    this.buf = buf;
    this.view = view;
    this.off = off;
    this.linkType = 1;
    this.l3 = l3;
    this.caplen = caplen;
    this.len = len;
    this.tsSec = tsSec;
    this.tsNsec = tsNsec;
    this.hasTs = hasTs;
    this.tsDigits = tsDigits;
    this.payloadOff = l3 + PAYLOAD;
    this.payloadLen = total - 28;
    return true;
  }

  /** The frame's addresses, ports, TTL and MACs (after parse). */
  load(): void {
    const buf = this.buf;
    const view = this.view;
    const off = this.off;
    const l3 = this.l3;
    this.src4 = view.getInt32(l3 + 12);
    this.dst4 = view.getInt32(l3 + 16);
    this.srcWord = view.getInt32(l3 + 12, true);
    this.dstWord = view.getInt32(l3 + 16, true);
    this.sport = view.getUint16(l3 + L4);
    this.dport = view.getUint16(l3 + L4 + 2);
    this.ttl = buf[l3 + 8];
    this.vlan = l3 === off + ETH ? -1 : view.getUint16(off + ETH) & 0x0fff;
    this.mac0 = view.getInt32(off + 6, true);
    this.mac1 = buf[off + 10] | (buf[off + 11] << 8) | (buf[off] << 16) | (buf[off + 1] << 24);
    this.mac2 = view.getInt32(off + 2, true);
  }
}

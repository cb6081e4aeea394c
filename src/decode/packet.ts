// DecodedPacket: what the core decoder hands to parsers. One instance per
// decoder, reset and overwritten for every frame; every field exists from
// construction with its final type so the object's shape never changes.
// Addresses stay as numbers (IPv4) or offsets into a buffer (IPv6) until
// something has to print them.

import { DecodeError } from './errors.js';

export const enum TunnelType {
  None = 0,
  Vxlan,
  Geneve,
  Gre,
  Erspan,
  IpIp,
}

export const TUNNEL_NAMES: readonly (string | null)[] = [null, 'vxlan', 'geneve', 'gre', 'erspan', 'ipip'];

export const MAX_VLANS = 8;

const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

export class DecodedPacket {
  // Frame
  frameBuf: Uint8Array = EMPTY;
  frameOff = 0;
  caplen = 0;
  len = 0;
  linkType = 0;
  tsSec = 0;
  tsNsec = 0;

  // L2: offsets of the outermost MAC addresses in frameBuf, -1 when absent.
  dstMacOff = -1;
  srcMacOff = -1;
  vlanCount = 0;
  readonly vlans = new Uint16Array(MAX_VLANS);

  // L2.5: the outermost tunnel. Outer addresses are copied (tunnels are rare).
  tunnelType: TunnelType = TunnelType.None;
  /** VNI (VXLAN, Geneve), GRE key or ERSPAN session ID; -1 when absent. */
  tunnelId = -1;
  tunnelDepth = 0;
  outerIpVersion = 0;
  readonly outerSrc = new Uint8Array(16);
  readonly outerDst = new Uint8Array(16);

  // L3 (innermost IP header)
  ipVersion = 0;
  /** IPv4 addresses as int32 (use >>> 0 to read unsigned). */
  src4 = 0;
  dst4 = 0;
  /** IPv6 addresses: 16 bytes at srcOff/dstOff in addrBuf. */
  addrBuf: Uint8Array = EMPTY;
  srcOff = 0;
  dstOff = 0;
  /** Upper-layer protocol number, -1 when no IP header was decoded. */
  proto = -1;
  ttl = -1;
  /** True when this frame completed a reassembled datagram. */
  fragmented = false;
  /** True when this frame only fed reassembly (no L4 fields). */
  held = false;

  // L4
  sport = -1;
  dport = -1;
  tcpFlags = -1;
  tcpSeq = 0;
  tcpAck = 0;

  // Payload: bytes [payloadOff, payloadOff + payloadLen) of payloadBuf. The
  // buffer is the frame's, or the reassembler's for a reassembled datagram.
  payloadBuf: Uint8Array = EMPTY;
  payloadView: DataView = EMPTY_VIEW;
  payloadOff = 0;
  /** -1 when no L3 payload was reached. */
  payloadLen = -1;

  error: DecodeError = DecodeError.None;

  reset(): void {
    this.dstMacOff = -1;
    this.srcMacOff = -1;
    this.vlanCount = 0;
    this.tunnelType = TunnelType.None;
    this.tunnelId = -1;
    this.tunnelDepth = 0;
    this.outerIpVersion = 0;
    this.ipVersion = 0;
    this.proto = -1;
    this.ttl = -1;
    this.fragmented = false;
    this.held = false;
    this.resetL4();
    this.error = DecodeError.None;
  }

  /** Cleared whenever a new IP header is entered, so inner layers never inherit outer ports. */
  resetL4(): void {
    this.sport = -1;
    this.dport = -1;
    this.tcpFlags = -1;
    this.tcpSeq = 0;
    this.tcpAck = 0;
    this.payloadLen = -1;
    this.payloadOff = 0;
  }
}

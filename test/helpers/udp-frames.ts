// Ethernet + IPv4 + UDP frames built in tests (checksums zero: the decoder does not check them).

export function ip4(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function udpFrame(src: string, dst: string, sport: number, dport: number, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const f = new Uint8Array(14 + 20 + 8 + body.length);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 20 + 8 + body.length);
  f[22] = 64;
  f[23] = 17;
  v.setUint32(26, ip4(src));
  v.setUint32(30, ip4(dst));
  v.setUint16(34, sport);
  v.setUint16(36, dport);
  v.setUint16(38, 8 + body.length);
  f.set(body, 42);
  return f;
}

/** An RTP packet: version 2, given payload type, sequence, timestamp, SSRC, then `payload` bytes. */
export function rtpPacket(pt: number, seq: number, ts: number, ssrc: number, payload: Uint8Array = new Uint8Array(160), marker = false): Uint8Array {
  const b = new Uint8Array(12 + payload.length);
  const v = new DataView(b.buffer);
  b[0] = 0x80;
  b[1] = (marker ? 0x80 : 0) | pt;
  v.setUint16(2, seq);
  v.setUint32(4, ts);
  v.setUint32(8, ssrc);
  b.set(payload, 12);
  return b;
}

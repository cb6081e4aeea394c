// Annotated byte fixtures: hex with `#` comments, whitespace ignored.

import { Decoder } from '../../src/decode/decoder.js';
import type { DecodedPacket } from '../../src/decode/packet.js';
import type { DecoderOptions } from '../../src/decode/options.js';

export function hex(text: string): Uint8Array {
  const clean = text.replace(/#.*$/gm, '').replace(/\s+/g, '');
  if (clean.length % 2 !== 0) throw new Error(`odd hex length in fixture: ${clean.length}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    const b = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
    if (Number.isNaN(b)) throw new Error(`bad hex at ${2 * i}: ${clean.slice(2 * i, 2 * i + 2)}`);
    out[i] = b;
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface DecodeAt {
  linkType?: number;
  /** Wire length when the capture was cut (caplen = bytes.length). */
  wireLen?: number;
  tsSec?: number;
}

/** Decodes one frame with `dec` (a fresh default decoder when omitted). */
export function decodeOne(bytes: Uint8Array, at: DecodeAt = {}, dec: Decoder = new Decoder()): DecodedPacket {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return dec.decodeBytes(bytes, view, 0, bytes.length, at.wireLen ?? bytes.length, at.linkType ?? 1, at.tsSec ?? 0, 0, true);
}

export function decoderWith(patch: (o: DecoderOptions) => void): Decoder {
  return new Decoder(withOptions(patch));
}

import { defaultDecoderOptions } from '../../src/decode/options.js';
export function withOptions(patch: (o: DecoderOptions) => void): DecoderOptions {
  const o = defaultDecoderOptions();
  patch(o);
  return o;
}

// Builders for synthetic frames (checksums are left zero: the decoder does not verify them).
export function ipv4Header(opts: { proto: number; payloadLen: number; src?: number[]; dst?: number[]; id?: number; flagsFrag?: number; ttl?: number; options?: Uint8Array }): Uint8Array {
  const optLen = opts.options?.length ?? 0;
  const hlen = 20 + optLen;
  const h = new Uint8Array(hlen);
  const v = new DataView(h.buffer);
  h[0] = 0x40 | (hlen >> 2);
  v.setUint16(2, hlen + opts.payloadLen);
  v.setUint16(4, opts.id ?? 1);
  v.setUint16(6, opts.flagsFrag ?? 0);
  h[8] = opts.ttl ?? 64;
  h[9] = opts.proto;
  h.set(opts.src ?? [10, 0, 0, 1], 12);
  h.set(opts.dst ?? [10, 0, 0, 2], 16);
  if (opts.options) h.set(opts.options, 20);
  return h;
}

export function udpHeader(sport: number, dport: number, payloadLen: number): Uint8Array {
  const h = new Uint8Array(8);
  const v = new DataView(h.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, 8 + payloadLen);
  return h;
}

export function ethernet(type: number): Uint8Array {
  return concat(hex('00 11 22 33 44 55  66 77 88 99 aa bb'), new Uint8Array([type >> 8, type & 0xff]));
}

/**
 * Ethernet + IPv4 + TCP between a client 10.0.0.1 and a server 10.0.0.2 on
 * `serverPort`: the addresses follow the direction the ports say.
 */
export function tcpFrame(sport: number, dport: number, seq: number, flags: number, payload: ArrayLike<number>, serverPort: number): Uint8Array {
  const tcp = new Uint8Array(20 + payload.length);
  const v = new DataView(tcp.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, seq);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  v.setUint16(14, 65535);
  tcp.set(payload, 20);
  const client = [10, 0, 0, 1];
  const server = [10, 0, 0, 2];
  const fromServer = sport === serverPort;
  const ip = ipv4Header({ proto: 6, payloadLen: tcp.length, src: fromServer ? server : client, dst: fromServer ? client : server });
  return concat(ethernet(0x0800), ip, tcp);
}

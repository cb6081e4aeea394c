// One WebRTC datagram demultiplexed as RFC 7983 §7 says, by its first byte:
//
//   0..3     STUN/TURN message (RFC 8489, RFC 8656)
//   16..19   ZRTP (not parsed: rejected, counted)
//   20..63   DTLS records (RFC 6347, RFC 9147; 32..63 are DTLS 1.3 unified headers)
//   64..79   TURN ChannelData (RFC 8656 §12.4)
//   128..191 RTP or RTCP (RFC 5761 §4: second byte 192..223 is RTCP) → SRTP/SRTCP (RFC 3711)
//
// handle() runs `parse` (headers, STUN attributes and DTLS records walked
// and bounds-checked; nothing written); the payload's writeJson walks the
// same bytes again into the record buffer. Nothing allocates per datagram.

import { ascii, writeBytes, writeIpv4, writeIpv6, writeJsonStringBytes, writeUint } from '../../../src/util/bytes.js';

export const enum Kind {
  None = 0,
  Stun,
  Dtls,
  Srtp,
  Srtcp,
  TurnChannel,
}
export const KIND_NAMES: readonly string[] = ['', 'stun', 'dtls', 'srtp', 'srtcp', 'turn-channel'];

/** No record: why. */
export const enum Reject {
  /** First byte in no RFC 7983 range (4..15, 80..127, 192..255). */
  UnknownFirstByte = 0,
  Zrtp,
  /** STUN: under 20 bytes, or the top two bits of the type not zero (impossible here), or a length not a multiple of 4 or past the datagram. */
  StunShort,
  StunBadLength,
  /** DTLS: under 13 bytes (first record header), or a record version whose major byte is not 0xfe. */
  DtlsShort,
  DtlsBadVersion,
  /** TURN ChannelData under 4 bytes. */
  TurnShort,
  /** RTP under 12 bytes, RTCP under 8. */
  RtpShort,
}
export const REJECT_NAMES: readonly string[] = ['unknown_first_byte', 'zrtp', 'stun_short', 'stun_bad_length', 'dtls_short', 'dtls_bad_version', 'turn_short', 'rtp_short'];

/** Record emitted, but the message is malformed past its header: why. */
export const enum Malformed {
  None = 0,
  /** A STUN attribute runs past the message. */
  StunAttrTruncated,
  /** A STUN address attribute with a bad length or family. */
  StunAttrBad,
  /** A DTLS record (after the first) runs past the datagram, or a later header is cut. */
  DtlsRecordTruncated,
  /** ChannelData whose length passes the datagram. */
  TurnLength,
  /** SRTP header: CSRCs or the extension run past the datagram. */
  RtpHeaderTruncated,
}
export const MALFORMED_NAMES: readonly string[] = ['none', 'stun_attr_truncated', 'stun_attr_bad', 'dtls_record_truncated', 'turn_length', 'rtp_header_truncated'];

export const STUN_COOKIE = 0x2112a442;

// IANA "STUN Methods"
const METHODS: [number, string][] = [
  [0x001, 'Binding'], [0x002, 'SharedSecret'], [0x003, 'Allocate'], [0x004, 'Refresh'], [0x006, 'Send'], [0x007, 'Data'],
  [0x008, 'CreatePermission'], [0x009, 'ChannelBind'], [0x00a, 'Connect'], [0x00b, 'ConnectionBind'], [0x00c, 'ConnectionAttempt'],
  [0x080, 'GOOG-PING'],
];
export const METHOD_NAME: string[] = new Array<string>(4096).fill('');
for (const [n, s] of METHODS) METHOD_NAME[n] = s;
export const CLASS_NAME: readonly string[] = ['request', 'indication', 'success', 'error'];

// IANA "STUN Attributes" (the ones named in the payload)
const ATTRS: [number, string][] = [
  [0x0001, 'MAPPED-ADDRESS'], [0x0006, 'USERNAME'], [0x0008, 'MESSAGE-INTEGRITY'], [0x0009, 'ERROR-CODE'],
  [0x000a, 'UNKNOWN-ATTRIBUTES'], [0x000c, 'CHANNEL-NUMBER'], [0x000d, 'LIFETIME'], [0x0012, 'XOR-PEER-ADDRESS'],
  [0x0013, 'DATA'], [0x0014, 'REALM'], [0x0015, 'NONCE'], [0x0016, 'XOR-RELAYED-ADDRESS'], [0x0017, 'REQUESTED-ADDRESS-FAMILY'],
  [0x0018, 'EVEN-PORT'], [0x0019, 'REQUESTED-TRANSPORT'], [0x001a, 'DONT-FRAGMENT'], [0x001c, 'MESSAGE-INTEGRITY-SHA256'],
  [0x001d, 'PASSWORD-ALGORITHM'], [0x001e, 'USERHASH'], [0x0020, 'XOR-MAPPED-ADDRESS'], [0x0022, 'RESERVATION-TOKEN'],
  [0x0024, 'PRIORITY'], [0x0025, 'USE-CANDIDATE'], [0x8002, 'PASSWORD-ALGORITHMS'], [0x8003, 'ALTERNATE-DOMAIN'],
  [0x8022, 'SOFTWARE'], [0x8023, 'ALTERNATE-SERVER'], [0x8027, 'CACHE-TIMEOUT'], [0x8028, 'FINGERPRINT'],
  [0x8029, 'ICE-CONTROLLED'], [0x802a, 'ICE-CONTROLLING'], [0x802b, 'RESPONSE-ORIGIN'], [0x802c, 'OTHER-ADDRESS'],
  [0xc057, 'GOOG-NETWORK-INFO'],
];
// A Map: an array of all 65536 attribute types was 512 KiB in every process that loads this parser.
const ATTR_NAME_JSON = new Map<number, Uint8Array>(ATTRS.map(([n, s]) => [n, ascii(`,"name":"${s}"`)]));

const HEX = ascii('0123456789abcdef');
const TRUE = ascii('true');
const FALSE = ascii('false');
const K_KIND = ascii('{"kind":"');
const K_TYPE = ascii(',"type":');
const K_METHOD = ascii(',"method":');
const K_METHOD_NAME = ascii(',"method_name":"');
const K_CLASS = ascii(',"class":"');
const K_LENGTH = ascii(',"length":');
const K_TXID = ascii(',"transaction_id":"');
const K_COOKIE = ascii('","cookie":');
const K_ATTRS = ascii(',"attributes":[');
const K_ATYPE = ascii('{"type":');
const K_VALUE = ascii(',"value":');
const K_ADDRESS = ascii(',"address":"');
const K_PORT = ascii('","port":');
const K_CODE = ascii(',"code":');
const K_REASON = ascii(',"reason":');
const K_RECORDS = ascii(',"records":[');
const K_CT = ascii('{"content_type":');
const K_VERSION = ascii(',"version":');
const K_EPOCH = ascii(',"epoch":');
const K_SEQ = ascii(',"sequence":');
const K_HS = ascii(',"handshake_type":');
const K_UNIFIED = ascii('{"unified":true,"cid":');
const K_EPOCH_BITS = ascii(',"epoch_bits":');
const K_SEQ_BITS = ascii(',"sequence_bits":');
const K_SSRC = ascii(',"ssrc":');
const K_PT = ascii(',"pt":');
const K_SEQN = ascii(',"seq":');
const K_TS = ascii(',"timestamp":');
const K_MARKER = ascii(',"marker":');
const K_PADDING = ascii(',"padding":');
const K_EXT = ascii(',"extension":');
const K_CC = ascii(',"csrc_count":');
const K_PAYLOAD_LEN = ascii(',"payload_len":');
const K_RC = ascii(',"count":');
const K_CHANNEL = ascii(',"channel":');
const K_INNER = ascii(',"inner":"');
const K_MALFORMED = ascii(',"malformed":"');
const K_NULL = ascii('null');
const K_CID_TRUE = ascii(',"cid":true}');

/** Largest attribute value written as hex or text (longer ones are cut, with `truncated`). */
const VALUE_MAX = 512;
const K_TRUNC = ascii(',"truncated":true');

/** Is the first byte one RFC 7983 §7 demultiplexes (STUN, DTLS, TURN ChannelData, RTP/RTCP)? */
export function isWebrtcFirstByte(c: number): boolean {
  return c <= 3 || (c >= 20 && c <= 79) || (c >= 128 && c <= 191);
}

export class WebrtcMessage {
  b: Uint8Array = new Uint8Array(0);
  base = 0;
  end = 0;
  kind: Kind = Kind.None;
  malformed: Malformed = Malformed.None;
  /** STUN */
  stunType = 0;
  stunMethod = 0;
  stunClass = 0;
  cookie = false;
  /** DTLS: first record's content type, -1 for a unified header. Records walked. */
  dtlsType = -1;
  dtlsRecords = 0;
  /**
   * The last record walked carries a connection ID (RFC 9146 type 25, or a
   * DTLS 1.3 unified header with C set): the CID's length was negotiated in
   * the handshake, so its fields after the CID are unknown and the walk stops there.
   */
  dtlsCid = false;
  /** TURN ChannelData: the inner kind (demultiplexed again). */
  inner: Kind = Kind.None;

  private o: Uint8Array = new Uint8Array(0);
  private p = 0;

  /** Demultiplexes and checks b[off, off+len). Returns -1 when a record is made, else the Reject reason. */
  parse(b: Uint8Array, off: number, len: number): number {
    this.b = b;
    this.base = off;
    this.end = off + len;
    this.malformed = Malformed.None;
    this.inner = Kind.None;
    const c = b[off];
    if (c <= 3) return this.parseStun(off, len);
    if (c >= 20 && c <= 63) return this.parseDtls(off, len);
    if (c >= 128 && c <= 191) return this.parseRtp(off, len);
    if (c >= 64 && c <= 79) {
      if (len < 4) return Reject.TurnShort;
      this.kind = Kind.TurnChannel;
      const l = (b[off + 2] << 8) | b[off + 3];
      if (4 + l > len) this.malformed = Malformed.TurnLength;
      else if (l > 0) {
        const ic = b[off + 4];
        this.inner = ic <= 3 ? Kind.Stun : ic >= 20 && ic <= 63 ? Kind.Dtls : ic >= 128 && ic <= 191 ? (b[off + 5] >= 192 && b[off + 5] <= 223 ? Kind.Srtcp : Kind.Srtp) : Kind.None;
      }
      return -1;
    }
    return c >= 16 && c <= 19 ? Reject.Zrtp : Reject.UnknownFirstByte;
  }

  private parseStun(off: number, len: number): number {
    const b = this.b;
    if (len < 20) return Reject.StunShort;
    const t = (b[off] << 8) | b[off + 1];
    const l = (b[off + 2] << 8) | b[off + 3];
    if ((l & 3) !== 0 || 20 + l > len) return Reject.StunBadLength;
    this.kind = Kind.Stun;
    this.stunType = t;
    // RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0
    this.stunMethod = (t & 0x000f) | ((t & 0x00e0) >>> 1) | ((t & 0x3e00) >>> 2);
    this.stunClass = ((t & 0x0100) >>> 7) | ((t & 0x0010) >>> 4);
    this.cookie = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0 === STUN_COOKIE;
    this.end = off + 20 + l; // bytes after the message (RFC 7983 allows none; ignored)
    let q = off + 20;
    const e = this.end;
    while (q < e) {
      if (q + 4 > e) {
        this.malformed = Malformed.StunAttrTruncated;
        break;
      }
      const at = (b[q] << 8) | b[q + 1];
      const al = (b[q + 2] << 8) | b[q + 3];
      if (q + 4 + al > e) {
        this.malformed = Malformed.StunAttrTruncated;
        break;
      }
      if (isAddress(at) && !addressOk(b, q + 4, al)) {
        this.malformed = Malformed.StunAttrBad;
        break;
      }
      q += 4 + ((al + 3) & ~3);
    }
    return -1;
  }

  private parseDtls(off: number, len: number): number {
    const b = this.b;
    const c = b[off];
    this.kind = Kind.Dtls;
    this.dtlsRecords = 0;
    this.dtlsCid = false;
    if (c >= 32) {
      // The first record is a DTLS 1.3 unified header: no content type, no version.
      if (len < 2) return Reject.DtlsShort;
      this.dtlsType = -1;
    } else {
      if (len < 13) return Reject.DtlsShort;
      if (b[off + 1] !== 0xfe) return Reject.DtlsBadVersion;
      this.dtlsType = c;
    }
    const e = off + len;
    let q = off;
    while (q < e) {
      const n = this.dtlsRecord(q, e);
      if (n === -2) {
        this.dtlsCid = true;
        this.dtlsRecords++;
        break;
      }
      if (n < 0) break;
      this.dtlsRecords++;
      q = n;
    }
    return -1;
  }

  /** One DTLS record at q: the position after it, -1 when malformed (reason set), -2 for a record with a connection ID (walk stops). */
  private dtlsRecord(q: number, e: number): number {
    const b = this.b;
    const c = b[q];
    if (c >= 32 && c <= 63) {
      // RFC 9147 §4: 001CSLEE [CID] seq(8|16) [length(16)]
      if (c & 0x10) return -2;
      const h = 1 + (c & 0x08 ? 2 : 1);
      if (c & 0x04) {
        if (q + h + 2 > e) {
          this.malformed = Malformed.DtlsRecordTruncated;
          return -1;
        }
        const l = (b[q + h] << 8) | b[q + h + 1];
        if (q + h + 2 + l > e) {
          this.malformed = Malformed.DtlsRecordTruncated;
          return -1;
        }
        return q + h + 2 + l;
      }
      if (q + h > e) {
        this.malformed = Malformed.DtlsRecordTruncated;
        return -1;
      }
      return e; // no length: the record fills the datagram
    }
    if (c < 20 || c > 31 || q + 13 > e || b[q + 1] !== 0xfe) {
      this.malformed = Malformed.DtlsRecordTruncated;
      return -1;
    }
    if (c === 25) return -2;
    const l = (b[q + 11] << 8) | b[q + 12];
    if (q + 13 + l > e) {
      this.malformed = Malformed.DtlsRecordTruncated;
      return -1;
    }
    return q + 13 + l;
  }

  private parseRtp(off: number, len: number): number {
    const b = this.b;
    const pt = b[off + 1];
    if (len >= 2 && pt >= 192 && pt <= 223) {
      if (len < 8) return Reject.RtpShort;
      this.kind = Kind.Srtcp;
      return -1;
    }
    if (len < 12) return Reject.RtpShort;
    this.kind = Kind.Srtp;
    let h = 12 + 4 * (b[off] & 15);
    if (h > len) this.malformed = Malformed.RtpHeaderTruncated;
    else if (b[off] & 0x10) {
      if (h + 4 > len || h + 4 + 4 * ((b[off + h + 2] << 8) | b[off + h + 3]) > len) this.malformed = Malformed.RtpHeaderTruncated;
    }
    return -1;
  }

  // ---- JSON ----

  /** Writes the payload object at out[off..end): -1 when it does not fit. */
  writeJson(out: Uint8Array, off: number, end: number): number {
    // Bound per datagram byte: a STUN attribute (≥ 4 bytes) prints ≤ 45 bytes of keys plus its value as hex (2x) or
    // escaped text (6x): 12x; a DTLS record (≥ 4 bytes) ≤ 95: 24x; RTP, RTCP, ChannelData are fixed.
    const len = this.end - this.base;
    const k = this.kind;
    if (end - off < 256 + (k === Kind.Dtls ? 24 : k === Kind.Stun ? 12 : 0) * len) return -1;
    this.o = out;
    this.p = off;
    this.lit(K_KIND);
    this.ascii(KIND_NAMES[this.kind]);
    this.ch(34);
    switch (this.kind) {
      case Kind.Stun:
        this.jsonStun();
        break;
      case Kind.Dtls:
        this.jsonDtls();
        break;
      case Kind.Srtp:
        this.jsonSrtp();
        break;
      case Kind.Srtcp:
        this.jsonSrtcp();
        break;
      case Kind.TurnChannel:
        this.lit(K_CHANNEL);
        this.num((this.b[this.base] << 8) | this.b[this.base + 1]);
        this.lit(K_LENGTH);
        this.num((this.b[this.base + 2] << 8) | this.b[this.base + 3]);
        if (this.inner !== Kind.None) {
          this.lit(K_INNER);
          this.ascii(KIND_NAMES[this.inner]);
          this.ch(34);
        }
        break;
      default:
    }
    if (this.malformed !== Malformed.None) {
      this.lit(K_MALFORMED);
      this.ascii(MALFORMED_NAMES[this.malformed]);
      this.ch(34);
    }
    this.ch(125);
    return this.p;
  }

  private lit(s: Uint8Array): void {
    this.p = writeBytes(this.o, this.p, s);
  }
  private num(v: number): void {
    this.p = writeUint(this.o, this.p, v);
  }
  private ch(c: number): void {
    this.o[this.p++] = c;
  }
  private ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.o[this.p++] = s.charCodeAt(i);
  }
  private bool(v: boolean): void {
    this.lit(v ? TRUE : FALSE);
  }
  private hex(at: number, len: number): void {
    const b = this.b;
    const o = this.o;
    let p = this.p;
    for (let i = at; i < at + len; i++) {
      o[p++] = HEX[b[i] >>> 4];
      o[p++] = HEX[b[i] & 15];
    }
    this.p = p;
  }
  private text(at: number, len: number): void {
    this.p = writeJsonStringBytes(this.o, this.p, this.b, at, len);
  }

  private u16(at: number): number {
    return (this.b[at] << 8) | this.b[at + 1];
  }
  private u32(at: number): number {
    return ((this.b[at] << 24) | (this.b[at + 1] << 16) | (this.b[at + 2] << 8) | this.b[at + 3]) >>> 0;
  }

  private jsonStun(): void {
    const b = this.b;
    const base = this.base;
    this.lit(K_TYPE);
    this.num(this.stunType);
    this.lit(K_METHOD);
    this.num(this.stunMethod);
    const mn = this.stunMethod < 4096 ? METHOD_NAME[this.stunMethod] : '';
    if (mn !== '') {
      this.lit(K_METHOD_NAME);
      this.ascii(mn);
      this.ch(34);
    }
    this.lit(K_CLASS);
    this.ascii(CLASS_NAME[this.stunClass]);
    this.ch(34);
    this.lit(K_LENGTH);
    this.num(this.u16(base + 2));
    this.lit(K_TXID);
    this.hex(base + (this.cookie ? 8 : 4), this.cookie ? 12 : 16);
    this.lit(K_COOKIE);
    this.bool(this.cookie);
    this.lit(K_ATTRS);
    let q = base + 20;
    const e = this.end;
    let first = true;
    while (q + 4 <= e) {
      const at = this.u16(q);
      const al = this.u16(q + 2);
      const v = q + 4;
      if (v + al > e) break;
      if (!first) this.ch(44);
      first = false;
      this.lit(K_ATYPE);
      this.num(at);
      const name = ATTR_NAME_JSON.get(at);
      if (name !== undefined) this.lit(name);
      if (isAddress(at)) {
        if (!addressOk(b, v, al)) {
          this.ch(125);
          break;
        }
        this.address(at, v, al);
      } else
        switch (at) {
          case 0x0006: // USERNAME
          case 0x0014: // REALM
          case 0x0015: // NONCE
          case 0x8022: // SOFTWARE
          case 0x8003: // ALTERNATE-DOMAIN
            this.lit(K_VALUE);
            this.text(v, al < VALUE_MAX ? al : VALUE_MAX);
            if (al > VALUE_MAX) this.lit(K_TRUNC);
            break;
          case 0x0024: // PRIORITY
          case 0x000d: // LIFETIME
          case 0x8028: // FINGERPRINT
          case 0x8027: // CACHE-TIMEOUT
            if (al === 4) {
              this.lit(K_VALUE);
              this.num(this.u32(v));
            }
            break;
          case 0x000c: // CHANNEL-NUMBER
            if (al === 4) {
              this.lit(K_VALUE);
              this.num(this.u16(v));
            }
            break;
          case 0x0019: // REQUESTED-TRANSPORT: protocol number
            if (al === 4) {
              this.lit(K_VALUE);
              this.num(b[v]);
            }
            break;
          case 0x0009: // ERROR-CODE: class*100 + number, reason
            if (al >= 4) {
              this.lit(K_CODE);
              this.num((b[v + 2] & 7) * 100 + (b[v + 3] < 100 ? b[v + 3] : 0));
              this.lit(K_REASON);
              const rl = al - 4 < VALUE_MAX ? al - 4 : VALUE_MAX;
              this.text(v + 4, rl);
            }
            break;
          case 0x0025: // USE-CANDIDATE: a flag
          case 0x001a: // DONT-FRAGMENT
            break;
          case 0x0013: // DATA: its length only
            this.lit(K_LENGTH);
            this.num(al);
            break;
          default:
            this.lit(K_VALUE);
            this.ch(34);
            this.hex(v, al < VALUE_MAX ? al : VALUE_MAX);
            this.ch(34);
            if (al > VALUE_MAX) this.lit(K_TRUNC);
        }
      this.ch(125);
      q = v + ((al + 3) & ~3);
    }
    this.ch(93);
  }

  /** MAPPED-ADDRESS family: 1 IPv4, 2 IPv6; XOR-* variants XOR the port with the cookie's top 16 bits, the address with cookie (+ transaction ID). */
  private address(at: number, v: number, al: number): void {
    const b = this.b;
    const xor = isXor(at);
    const fam = b[v + 1];
    let port = this.u16(v + 2);
    if (xor) port ^= STUN_COOKIE >>> 16;
    const a = ADDR;
    const n = fam === 1 ? 4 : 16;
    for (let i = 0; i < n; i++) a[i] = b[v + 4 + i];
    if (xor) for (let i = 0; i < n; i++) a[i] ^= b[this.base + 4 + i]; // cookie, then transaction ID (IPv6)
    this.lit(K_ADDRESS);
    this.p = fam === 1 ? writeIpv4(this.o, this.p, a, 0) : writeIpv6(this.o, this.p, a, 0);
    this.lit(K_PORT);
    this.num(port);
    void al;
  }

  private jsonDtls(): void {
    const b = this.b;
    this.lit(K_RECORDS);
    let q = this.base;
    for (let i = 0; i < this.dtlsRecords; i++) {
      if (i > 0) this.ch(44);
      const c = b[q];
      if (c >= 32 && c <= 63) {
        this.lit(K_UNIFIED);
        this.bool((c & 0x10) !== 0);
        this.lit(K_EPOCH_BITS);
        this.num(c & 3);
        if (c & 0x10) {
          // CID of unknown length next: nothing after it can be placed.
          this.ch(125);
          break;
        }
        this.lit(K_SEQ_BITS);
        this.num(c & 0x08 ? 16 : 8);
        const h = 1 + (c & 0x08 ? 2 : 1);
        this.lit(K_SEQ);
        this.num(c & 0x08 ? this.u16(q + 1) : b[q + 1]);
        this.lit(K_LENGTH);
        if (c & 0x04) {
          const l = this.u16(q + h);
          this.num(l);
          q += h + 2 + l;
        } else {
          this.lit(K_NULL);
          q = this.end;
        }
        this.ch(125);
        continue;
      }
      const epoch = this.u16(q + 3);
      const l = this.u16(q + 11);
      this.lit(K_CT);
      this.num(c);
      this.lit(K_VERSION);
      this.num(this.u16(q + 1));
      this.lit(K_EPOCH);
      this.num(epoch);
      this.lit(K_SEQ);
      this.num(this.u16(q + 5) * 4294967296 + this.u32(q + 7));
      if (c === 25) {
        // tls12_cid (RFC 9146): the CID's length is not in the record; the length field cannot be found.
        this.lit(K_CID_TRUE);
        break;
      }
      this.lit(K_LENGTH);
      this.num(l);
      // A handshake record of epoch 0 is plaintext: its first byte is the handshake type.
      if (c === 22 && epoch === 0 && l > 0) {
        this.lit(K_HS);
        this.num(b[q + 13]);
      }
      this.ch(125);
      q += 13 + l;
    }
    this.ch(93);
  }

  private jsonSrtp(): void {
    const b = this.b;
    const base = this.base;
    const c = b[base];
    this.lit(K_SSRC);
    this.num(this.u32(base + 8));
    this.lit(K_PT);
    this.num(b[base + 1] & 127);
    this.lit(K_SEQN);
    this.num(this.u16(base + 2));
    this.lit(K_TS);
    this.num(this.u32(base + 4));
    this.lit(K_MARKER);
    this.bool((b[base + 1] & 128) !== 0);
    this.lit(K_PADDING);
    this.bool((c & 0x20) !== 0);
    this.lit(K_EXT);
    this.bool((c & 0x10) !== 0);
    this.lit(K_CC);
    this.num(c & 15);
    if (this.malformed === Malformed.None) {
      let h = 12 + 4 * (c & 15);
      if (c & 0x10) h += 4 + 4 * this.u16(base + h + 2);
      this.lit(K_PAYLOAD_LEN);
      this.num(this.end - base - h);
    }
  }

  private jsonSrtcp(): void {
    const b = this.b;
    const base = this.base;
    this.lit(K_PT);
    this.num(b[base + 1]);
    this.lit(K_RC);
    this.num(b[base] & 31);
    this.lit(K_LENGTH);
    this.num(this.u16(base + 2));
    this.lit(K_SSRC);
    this.num(this.u32(base + 4));
  }
}

const ADDR = new Uint8Array(16);

function isXor(t: number): boolean {
  return t === 0x0020 || t === 0x0012 || t === 0x0016;
}

function isAddress(t: number): boolean {
  return t === 0x0001 || isXor(t) || t === 0x8023 || t === 0x802b || t === 0x802c;
}

function addressOk(b: Uint8Array, v: number, al: number): boolean {
  const fam = b[v + 1];
  return al >= 4 && ((fam === 1 && al === 8) || (fam === 2 && al === 20));
}

// One DNS message (RFC 1035 §4) walked in place: the header, the question
// section and the three RR sections, with the RDATA of A, AAAA, NS, CNAME,
// PTR, DNAME, MX, TXT, SPF, SOA, SRV, NAPTR, CAA, SVCB/HTTPS (RFC 9460) and
// OPT (RFC 6891, with its options) decoded, any other type as hex.
//
// The same walk serves two purposes, like gopacket's DecodeFromBytes over one
// reused struct: handle() runs it "dry" (output into a private scratch whose
// position rewinds before each piece, so it can never run out) to validate
// the whole message and find the first malformation; the payload's writeJson
// runs it again into the record buffer, bounded by `end`. Nothing allocates:
// names are decoded into one reused byte buffer, numbers and addresses are
// written as bytes.
//
// Names (RFC 1035 §4.1.4): compression pointers may point anywhere inside the
// message but at most MAX_JUMPS are followed per name (loop protection); a
// name is at most 255 octets on the wire (depth protection: at most 127
// labels); label types 01 and 10 (RFC 6891 §5: deprecated extended labels)
// are malformed. Names print in presentation format: `.` and `\` inside a
// label as `\.` and `\\`, bytes outside 0x21..0x7e as `\DDD`, the root as `.`.

import { ascii, writeBytes, writeIpv4, writeIpv6, writeJsonStringBytes, writeUint } from '../../../src/util/bytes.js';
import { CLASS_NAME, OPTION_NAME, SVC_KEY_JSON, SVC_KEY_TEXT, TYPE_NAME } from './names.js';

/** Why a message (or the rest of it) could not be parsed. Index into MALFORMED_NAMES. */
export const enum Malformed {
  None = 0,
  /** Fewer than 12 bytes: not a DNS message (the record is rejected). */
  ShortHeader,
  /** A label or pointer runs past the end of the message (or of its RDATA). */
  NameTruncated,
  /** A compression pointer points at or past the end of the message. */
  NameBadPointer,
  /** More than MAX_JUMPS compression pointers in one name. */
  NameLoop,
  /** A name longer than 255 octets. */
  NameTooLong,
  /** Label type 01 or 10. */
  NameBadLabelType,
  /** The message ends inside the 4 fixed bytes of a question. */
  QuestionTruncated,
  /** The message ends inside the 10 fixed bytes of an RR. */
  RrTruncated,
  /** RDLENGTH runs past the end of the message. */
  RdataTruncated,
  /** The RDATA does not fit its type (A not 4 bytes, a name not filling RDATA, a string or option overrunning it...). */
  RdataMalformed,
  /** The section counts announce more entries than the message holds (it ends exactly between entries). */
  MissingRecords,
}

export const MALFORMED_NAMES: readonly string[] = [
  'none',
  'short_header',
  'name_truncated',
  'name_bad_pointer',
  'name_loop',
  'name_too_long',
  'name_bad_label_type',
  'question_truncated',
  'rr_truncated',
  'rdata_truncated',
  'rdata_malformed',
  'missing_records',
];

export const MAX_JUMPS = 64;
const NAME_MAX = 255;

const HEX = ascii('0123456789abcdef');
const K_ID = ascii('{"id":');
const K_QR = ascii(',"qr":');
const K_OPCODE = ascii(',"opcode":');
const K_AA = ascii(',"aa":');
const K_TC = ascii(',"tc":');
const K_RD = ascii(',"rd":');
const K_RA = ascii(',"ra":');
const K_Z = ascii(',"z":');
const K_AD = ascii(',"ad":');
const K_CD = ascii(',"cd":');
const K_RCODE = ascii(',"rcode":');
const K_QUESTIONS = ascii(',"questions":[');
const K_ANSWERS = ascii('],"answers":[');
const K_AUTHORITIES = ascii('],"authorities":[');
const K_ADDITIONALS = ascii('],"additionals":[');
const K_MALFORMED = ascii(',"malformed":"');
const K_NAME = ascii('{"name":');
const K_TYPE = ascii(',"type":"');
const K_CLASS = ascii('","class":"');
const K_TTL = ascii('","ttl":');
const K_TYPE_PREFIX = ascii('TYPE');
const K_CLASS_PREFIX = ascii('CLASS');
const K_DATA = ascii(',"data":');
const K_RDATA = ascii(',"rdata":"');
const K_PREFERENCE = ascii(',"preference":');
const K_EXCHANGE = ascii(',"exchange":');
const K_MNAME = ascii(',"mname":');
const K_RNAME = ascii(',"rname":');
const K_SERIAL = ascii(',"serial":');
const K_REFRESH = ascii(',"refresh":');
const K_RETRY = ascii(',"retry":');
const K_EXPIRE = ascii(',"expire":');
const K_MINIMUM = ascii(',"minimum":');
const K_PRIORITY = ascii(',"priority":');
const K_WEIGHT = ascii(',"weight":');
const K_PORT = ascii(',"port":');
const K_TARGET = ascii(',"target":');
const K_ORDER = ascii(',"order":');
const K_FLAGS = ascii(',"flags":');
const K_SERVICES = ascii(',"services":');
const K_REGEXP = ascii(',"regexp":');
const K_REPLACEMENT = ascii(',"replacement":');
const K_TAG = ascii(',"tag":');
const K_VALUE = ascii(',"value":');
const K_PARAMS = ascii(',"params":{');
const K_KEY = ascii('"key');
const K_UDP_SIZE = ascii('","udp_size":');
const K_EXT_RCODE = ascii(',"ext_rcode":');
const K_VERSION = ascii(',"version":');
const K_DO = ascii(',"do":');
const K_OPTIONS = ascii(',"options":[');
const K_CODE = ascii('{"code":');
const K_OPT_NAME = ascii(',"name":"');
const K_FAMILY = ascii(',"family":');
const K_SOURCE_PREFIX = ascii(',"source_prefix":');
const K_SCOPE_PREFIX = ascii(',"scope_prefix":');
const K_ADDRESS = ascii(',"address":"');
const K_INFO_CODE = ascii(',"info_code":');
const K_EXTRA_TEXT = ascii(',"extra_text":');
const TRUE = ascii('true');
const FALSE = ascii('false');

const OPT = 41;

/**
 * The walker. One per parser; `reset` points it at a message, `run` walks it.
 * After a dry run: `malformed`, the counts, and the first question (in
 * `qName`/`qNameLen`, `qType`) are set.
 */
export class DnsMessage {
  // Input
  b: Uint8Array = new Uint8Array(0);
  base = 0;
  end = 0;

  // Output: buffer, position, limit. Dry runs write into `scratch`.
  private o: Uint8Array;
  private p = 0;
  private oEnd = 0;
  private dry = true;
  private readonly scratch = new Uint8Array(16 * 65536 + 8192);

  /** Decoded name of the last readName, presentation format (ASCII). */
  readonly name = new Uint8Array(4 * NAME_MAX + 8);
  nameLen = 0;
  /** First question's name (copied from `name`) and type; qType -1 when there is no question. */
  readonly qName = new Uint8Array(4 * NAME_MAX + 8);
  qNameLen = 0;
  qType = -1;

  malformed: Malformed = Malformed.None;
  /** Entries (questions + RRs) fully walked. */
  entries = 0;

  constructor() {
    this.o = this.scratch;
  }

  reset(b: Uint8Array, off: number, len: number): void {
    this.b = b;
    this.base = off;
    this.end = off + len;
    this.malformed = Malformed.None;
    this.entries = 0;
    this.qType = -1;
    this.qNameLen = 0;
  }

  get id(): number {
    return (this.b[this.base] << 8) | this.b[this.base + 1];
  }
  get flags(): number {
    return (this.b[this.base + 2] << 8) | this.b[this.base + 3];
  }

  /** Validates the message (no output). Returns the first malformation, None when whole. */
  validate(): Malformed {
    this.dry = true;
    this.o = this.scratch;
    this.p = 0;
    this.oEnd = this.scratch.length;
    this.walk();
    return this.malformed;
  }

  /** Writes the JSON object at out[off..end); -1 when it does not fit. Run validate() first. */
  writeJson(out: Uint8Array, off: number, end: number): number {
    this.dry = false;
    this.o = out;
    this.p = off;
    this.oEnd = end;
    const ok = this.walk();
    this.dry = true;
    this.o = this.scratch;
    return ok ? this.p : -1;
  }

  /** Room for n more output bytes: dry runs rewind the scratch; real runs fail (the record is dropped, counted by the pipeline). */
  private room(n: number): boolean {
    if (this.p + n <= this.oEnd) return true;
    if (this.dry) {
      this.p = 0;
      return true;
    }
    return false;
  }

  private lit(s: Uint8Array): void {
    this.p = writeBytes(this.o, this.p, s);
  }
  private num(v: number): void {
    this.p = writeUint(this.o, this.p, v);
  }
  private bool(v: boolean): void {
    this.lit(v ? TRUE : FALSE);
  }
  private ch(c: number): void {
    this.o[this.p++] = c;
  }
  private u16(at: number): number {
    return (this.b[at] << 8) | this.b[at + 1];
  }
  private u32(at: number): number {
    return ((this.b[at] << 24) | (this.b[at + 1] << 16) | (this.b[at + 2] << 8) | this.b[at + 3]) >>> 0;
  }

  /** Walks everything; false only when a real run ran out of room. */
  private walk(): boolean {
    const b = this.b;
    const base = this.base;
    const end = this.end;
    if (end - base < 12) {
      this.malformed = Malformed.ShortHeader;
      return true;
    }
    this.malformed = Malformed.None;
    this.entries = 0;
    if (!this.room(256)) return false;
    const flags = this.u16(base + 2);
    this.lit(K_ID);
    this.num(this.u16(base));
    this.lit(K_QR);
    this.num(flags >>> 15);
    this.lit(K_OPCODE);
    this.num((flags >>> 11) & 15);
    this.lit(K_AA);
    this.bool((flags & 0x400) !== 0);
    this.lit(K_TC);
    this.bool((flags & 0x200) !== 0);
    this.lit(K_RD);
    this.bool((flags & 0x100) !== 0);
    this.lit(K_RA);
    this.bool((flags & 0x80) !== 0);
    this.lit(K_Z);
    this.bool((flags & 0x40) !== 0);
    this.lit(K_AD);
    this.bool((flags & 0x20) !== 0);
    this.lit(K_CD);
    this.bool((flags & 0x10) !== 0);
    this.lit(K_RCODE);
    this.num(flags & 15);
    const qd = this.u16(base + 4);
    const an = this.u16(base + 6);
    const ns = this.u16(base + 8);
    const ar = this.u16(base + 10);
    let pos = base + 12;

    this.lit(K_QUESTIONS);
    for (let i = 0; i < qd && this.malformed === Malformed.None; i++) {
      if (pos === end) {
        this.malformed = Malformed.MissingRecords;
        break;
      }
      if (!this.room(1500)) return false;
      const next = this.readName(pos, end);
      if (next < 0) break;
      if (next + 4 > end) {
        this.malformed = Malformed.QuestionTruncated;
        break;
      }
      const type = this.u16(next);
      if (i === 0) {
        this.qType = type;
        const n = this.nameLen;
        for (let k = 0; k < n; k++) this.qName[k] = this.name[k];
        this.qNameLen = n;
      } else this.ch(44);
      this.lit(K_NAME);
      this.writeName();
      this.typeClass(type, this.u16(next + 2));
      this.ch(34);
      this.ch(125);
      pos = next + 4;
      this.entries++;
    }
    this.lit(K_ANSWERS);
    pos = this.section(pos, an);
    this.lit(K_AUTHORITIES);
    pos = this.section(pos, ns);
    this.lit(K_ADDITIONALS);
    pos = this.section(pos, ar);
    if (pos === -2) return false;
    if (!this.room(64)) return false;
    this.ch(93);
    if (this.malformed !== Malformed.None) {
      this.lit(K_MALFORMED);
      this.lit(MALFORMED_JSON[this.malformed]);
      this.ch(34);
    }
    this.ch(125);
    return true;
  }

  /** One RR section of `count` entries from pos; returns the position after it, -1 when malformed, -2 out of room. */
  private section(pos: number, count: number): number {
    if (pos < 0) return pos;
    const end = this.end;
    for (let i = 0; i < count && this.malformed === Malformed.None; i++) {
      if (pos === end) {
        this.malformed = Malformed.MissingRecords;
        return -1;
      }
      if (!this.room(1500)) return -2;
      const next = this.readName(pos, end);
      if (next < 0) return -1;
      if (next + 10 > end) {
        this.malformed = Malformed.RrTruncated;
        return -1;
      }
      const type = this.u16(next);
      const cls = this.u16(next + 2);
      const ttl = this.u32(next + 4);
      const rdlen = this.u16(next + 8);
      const rd = next + 10;
      if (rd + rdlen > end) {
        this.malformed = Malformed.RdataTruncated;
        return -1;
      }
      if (i > 0) this.ch(44);
      this.lit(K_NAME);
      this.writeName();
      if (type === OPT) {
        // RFC 6891 §6.1.3: CLASS is the requestor's UDP payload size, TTL the extended RCODE, version and flags.
        this.lit(K_TYPE);
        this.lit(T_OPT);
        this.lit(K_UDP_SIZE);
        this.num(cls);
        this.lit(K_EXT_RCODE);
        this.num(ttl >>> 24);
        this.lit(K_VERSION);
        this.num((ttl >>> 16) & 255);
        this.lit(K_DO);
        this.bool((ttl & 0x8000) !== 0);
        if (!this.rdataOpt(rd, rdlen)) return -2;
      } else {
        this.typeClass(type, cls);
        this.lit(K_TTL);
        this.num(ttl);
        if (!this.rdata(type, rd, rdlen)) return -2;
      }
      if (this.malformed !== Malformed.None) {
        this.ch(125);
        return -1;
      }
      this.ch(125);
      pos = rd + rdlen;
      this.entries++;
    }
    return pos;
  }

  /** `,"type":"A","class":"IN"` (no closing quote: the caller continues). */
  private typeClass(type: number, cls: number): void {
    this.lit(K_TYPE);
    this.typeText(type);
    this.lit(K_CLASS);
    const c = CLASS_NAME.get(cls);
    if (c !== '') this.ascii(c);
    else {
      this.lit(K_CLASS_PREFIX);
      this.num(cls);
    }
  }

  private typeText(type: number): void {
    const t = TYPE_NAME.get(type);
    if (t !== '') this.ascii(t);
    else {
      this.lit(K_TYPE_PREFIX);
      this.num(type);
    }
  }

  private ascii(s: string): void {
    const o = this.o;
    let p = this.p;
    for (let i = 0; i < s.length; i++) o[p++] = s.charCodeAt(i);
    this.p = p;
  }

  /**
   * Decodes the name at pos into `name` (presentation format). The labels at
   * pos must end before `limit` (RDATA's end, or the message's); after a
   * pointer, anything inside the message may be read. Returns the position
   * after the name where it started, -1 when malformed (reason set).
   */
  readName(pos: number, limit: number): number {
    const b = this.b;
    const base = this.base;
    const out = this.name;
    let p = pos;
    let lim = limit;
    let next = -1;
    let jumps = 0;
    let wire = 1;
    let n = 0;
    for (;;) {
      if (p >= lim) {
        this.malformed = Malformed.NameTruncated;
        return -1;
      }
      const len = b[p];
      if (len === 0) {
        if (next < 0) next = p + 1;
        break;
      }
      const t = len & 0xc0;
      if (t === 0xc0) {
        if (p + 1 >= lim) {
          this.malformed = Malformed.NameTruncated;
          return -1;
        }
        if (next < 0) next = p + 2;
        if (++jumps > MAX_JUMPS) {
          this.malformed = Malformed.NameLoop;
          return -1;
        }
        const target = base + (((len & 0x3f) << 8) | b[p + 1]);
        if (target >= this.end) {
          this.malformed = Malformed.NameBadPointer;
          return -1;
        }
        p = target;
        lim = this.end;
        continue;
      }
      if (t !== 0) {
        this.malformed = Malformed.NameBadLabelType;
        return -1;
      }
      wire += len + 1;
      if (wire > NAME_MAX) {
        this.malformed = Malformed.NameTooLong;
        return -1;
      }
      if (p + 1 + len > lim) {
        this.malformed = Malformed.NameTruncated;
        return -1;
      }
      if (n > 0) out[n++] = 46;
      for (let i = p + 1, e = p + 1 + len; i < e; i++) {
        const c = b[i];
        if (c === 46 || c === 92) {
          out[n++] = 92;
          out[n++] = c;
        } else if (c > 0x20 && c < 0x7f) out[n++] = c;
        else {
          out[n++] = 92;
          out[n++] = 48 + ((c / 100) | 0);
          out[n++] = 48 + (((c / 10) | 0) % 10);
          out[n++] = 48 + (c % 10);
        }
      }
      p += 1 + len;
    }
    if (n === 0) out[n++] = 46;
    this.nameLen = n;
    return next;
  }

  /** The last decoded name as a JSON string (escapes `"` and `\`). Caller made room (1500). */
  private writeName(): void {
    const o = this.o;
    const s = this.name;
    let p = this.p;
    o[p++] = 34;
    for (let i = 0; i < this.nameLen; i++) {
      const c = s[i];
      if (c === 34 || c === 92) o[p++] = 92;
      o[p++] = c;
    }
    o[p++] = 34;
    this.p = p;
  }

  /** A name inside RDATA that must end exactly at or before rdEnd; writes `key"name"`. False when malformed. */
  private rdName(key: Uint8Array, pos: number, rdEnd: number): number {
    const next = this.readName(pos, rdEnd);
    if (next < 0) return -1;
    this.lit(key);
    this.writeName();
    return next;
  }

  /** Bytes b[at, at+len) as a JSON string: printable ASCII as is, `"` and `\` escaped, others \u00XX. */
  private text(at: number, len: number): void {
    this.p = writeJsonStringBytes(this.o, this.p, this.b, at, len);
  }


  private hex(at: number, len: number): void {
    const b = this.b;
    const o = this.o;
    let p = this.p;
    for (let i = at, e = at + len; i < e; i++) {
      o[p++] = HEX[b[i] >>> 4];
      o[p++] = HEX[b[i] & 15];
    }
    this.p = p;
  }

  private bad(): boolean {
    if (this.malformed === Malformed.None) this.malformed = Malformed.RdataMalformed;
    return true;
  }

  /** RDATA of one RR; false only when out of room. Sets `malformed` on bad RDATA. */
  private rdata(type: number, rd: number, len: number): boolean {
    const b = this.b;
    const e = rd + len;
    if (!this.room(10 * len + 1600)) return false;
    // Empty RDATA: RFC 2136 §2.4/2.5 prerequisites and deletions (class NONE/ANY), and negative answers.
    if (len === 0) return true;
    switch (type) {
      case 1: // A
        if (len !== 4) return this.bad();
        this.lit(K_DATA);
        this.ch(34);
        this.p = writeIpv4(this.o, this.p, b, rd);
        this.ch(34);
        return true;
      case 28: // AAAA
        if (len !== 16) return this.bad();
        this.lit(K_DATA);
        this.ch(34);
        this.p = writeIpv6(this.o, this.p, b, rd);
        this.ch(34);
        return true;
      case 2: // NS
      case 3: // MD
      case 4: // MF
      case 5: // CNAME
      case 7: // MB
      case 8: // MG
      case 9: // MR
      case 12: // PTR
      case 39: // DNAME
        if (this.rdName(K_DATA, rd, e) !== e) return this.bad();
        return true;
      case 15: {
        // MX
        if (len < 3) return this.bad();
        this.lit(K_PREFERENCE);
        this.num(this.u16(rd));
        if (this.rdName(K_EXCHANGE, rd + 2, e) !== e) return this.bad();
        return true;
      }
      case 16: // TXT
      case 99: {
        // SPF: one or more <character-string>s
        this.lit(K_DATA);
        this.ch(91);
        let q = rd;
        let first = true;
        while (q < e) {
          const n = b[q];
          if (q + 1 + n > e) {
            this.ch(93);
            return this.bad();
          }
          if (!first) this.ch(44);
          first = false;
          this.text(q + 1, n);
          q += 1 + n;
        }
        this.ch(93);
        return true;
      }
      case 6: {
        // SOA
        let q = this.rdName(K_MNAME, rd, e);
        if (q < 0) return this.bad();
        if (!this.room(1500)) return false;
        q = this.rdName(K_RNAME, q, e);
        if (q < 0 || q + 20 !== e) return this.bad();
        this.lit(K_SERIAL);
        this.num(this.u32(q));
        this.lit(K_REFRESH);
        this.num(this.u32(q + 4));
        this.lit(K_RETRY);
        this.num(this.u32(q + 8));
        this.lit(K_EXPIRE);
        this.num(this.u32(q + 12));
        this.lit(K_MINIMUM);
        this.num(this.u32(q + 16));
        return true;
      }
      case 33: {
        // SRV (RFC 2782)
        if (len < 7) return this.bad();
        this.lit(K_PRIORITY);
        this.num(this.u16(rd));
        this.lit(K_WEIGHT);
        this.num(this.u16(rd + 2));
        this.lit(K_PORT);
        this.num(this.u16(rd + 4));
        if (this.rdName(K_TARGET, rd + 6, e) !== e) return this.bad();
        return true;
      }
      case 35: {
        // NAPTR (RFC 3403)
        if (len < 7) return this.bad();
        this.lit(K_ORDER);
        this.num(this.u16(rd));
        this.lit(K_PREFERENCE);
        this.num(this.u16(rd + 2));
        let q = rd + 4;
        const keys = NAPTR_STRINGS;
        for (let k = 0; k < 3; k++) {
          if (q >= e || q + 1 + b[q] > e) return this.bad();
          this.lit(keys[k]);
          this.text(q + 1, b[q]);
          q += 1 + b[q];
        }
        if (this.rdName(K_REPLACEMENT, q, e) !== e) return this.bad();
        return true;
      }
      case 257: {
        // CAA (RFC 8659)
        if (len < 2) return this.bad();
        const tl = b[rd + 1];
        if (tl === 0 || rd + 2 + tl > e) return this.bad();
        this.lit(K_FLAGS);
        this.num(b[rd]);
        this.lit(K_TAG);
        this.text(rd + 2, tl);
        this.lit(K_VALUE);
        this.text(rd + 2 + tl, e - (rd + 2 + tl));
        return true;
      }
      case 64: // SVCB
      case 65: // HTTPS
        return this.rdataSvcb(rd, e);
      default:
        this.lit(K_RDATA);
        this.hex(rd, len);
        this.ch(34);
        return true;
    }
  }

  /** SVCB/HTTPS (RFC 9460 §2.2): priority, target, then params in strictly increasing key order. */
  private rdataSvcb(rd: number, e: number): boolean {
    const b = this.b;
    if (e - rd < 3) return this.bad();
    this.lit(K_PRIORITY);
    this.num(this.u16(rd));
    let q = this.rdName(K_TARGET, rd + 2, e);
    if (q < 0) return this.bad();
    this.lit(K_PARAMS);
    let first = true;
    let lastKey = -1;
    while (q < e) {
      if (q + 4 > e) break;
      const key = this.u16(q);
      const vl = this.u16(q + 2);
      const v = q + 4;
      const ve = v + vl;
      if (ve > e || key <= lastKey) break;
      lastKey = key;
      if (!first) this.ch(44);
      first = false;
      if (key < SVC_KEY_JSON.length) this.lit(SVC_KEY_JSON[key]);
      else {
        this.lit(K_KEY);
        this.num(key);
        this.ch(34);
        this.ch(58);
      }
      let ok = true;
      switch (key) {
        case 0: // mandatory: list of keys
          if (vl === 0 || (vl & 1) !== 0) ok = false;
          else {
            this.ch(91);
            for (let i = v; i < ve; i += 2) {
              if (i > v) this.ch(44);
              const k = this.u16(i);
              if (k < SVC_KEY_TEXT.length) this.lit(SVC_KEY_TEXT[k]);
              else {
                this.lit(K_KEY);
                this.num(k);
                this.ch(34);
              }
            }
            this.ch(93);
          }
          break;
        case 1: {
          // alpn: non-empty length-prefixed ids; checked whole before anything is written
          let i = v;
          ok = vl > 0;
          while (ok && i < ve) {
            if (b[i] === 0 || i + 1 + b[i] > ve) ok = false;
            i += 1 + b[i];
          }
          if (!ok) break;
          this.ch(91);
          for (i = v; i < ve; i += 1 + b[i]) {
            if (i > v) this.ch(44);
            this.text(i + 1, b[i]);
          }
          this.ch(93);
          break;
        }
        case 2: // no-default-alpn
          if (vl !== 0) ok = false;
          else this.lit(TRUE);
          break;
        case 3: // port
          if (vl !== 2) ok = false;
          else this.num(this.u16(v));
          break;
        case 4: // ipv4hint
        case 6: {
          // ipv6hint
          const w = key === 4 ? 4 : 16;
          if (vl === 0 || vl % w !== 0) ok = false;
          else {
            this.ch(91);
            for (let i = v; i < ve; i += w) {
              if (i > v) this.ch(44);
              this.ch(34);
              this.p = w === 4 ? writeIpv4(this.o, this.p, b, i) : writeIpv6(this.o, this.p, b, i);
              this.ch(34);
            }
            this.ch(93);
          }
          break;
        }
        case 7: // dohpath (RFC 9461): UTF-8 URI template
          this.text(v, vl);
          break;
        default:
          this.ch(34);
          this.hex(v, vl);
          this.ch(34);
      }
      if (!ok) {
        // Close what was opened so the JSON stays well formed, then stop.
        this.lit(NULL);
        this.ch(125);
        return this.bad();
      }
      q = ve;
    }
    this.ch(125);
    if (q !== e) return this.bad();
    return true;
  }

  /** OPT RDATA (RFC 6891 §6.1.2): {code, length, data} options. */
  private rdataOpt(rd: number, len: number): boolean {
    const b = this.b;
    const e = rd + len;
    if (!this.room(16 * len + 256)) return false;
    this.lit(K_OPTIONS);
    let q = rd;
    while (q < e) {
      if (q + 4 > e) {
        this.ch(93);
        return this.bad();
      }
      const code = this.u16(q);
      const ol = this.u16(q + 2);
      const v = q + 4;
      if (v + ol > e) {
        this.ch(93);
        return this.bad();
      }
      if (q > rd) this.ch(44);
      this.lit(K_CODE);
      this.num(code);
      const name = OPTION_NAME.get(code);
      if (name !== '') {
        this.lit(K_OPT_NAME);
        this.ascii(name);
        this.ch(34);
      }
      if (code === 8 && ol >= 4 && (this.u16(v) === 1 || this.u16(v) === 2)) {
        // ECS (RFC 7871 §6): family, source and scope prefix, address truncated to the prefix.
        const fam = this.u16(v);
        const alen = ol - 4;
        const max = fam === 1 ? 4 : 16;
        if (alen > max) {
          this.ch(125);
          this.ch(93);
          return this.bad();
        }
        this.lit(K_FAMILY);
        this.num(fam);
        this.lit(K_SOURCE_PREFIX);
        this.num(b[v + 2]);
        this.lit(K_SCOPE_PREFIX);
        this.num(b[v + 3]);
        this.lit(K_ADDRESS);
        const a = this.addr;
        a.fill(0);
        for (let i = 0; i < alen; i++) a[i] = b[v + 4 + i];
        this.p = fam === 1 ? writeIpv4(this.o, this.p, a, 0) : writeIpv6(this.o, this.p, a, 0);
        this.ch(34);
      } else if (code === 15 && ol >= 2) {
        // Extended DNS Error (RFC 8914): INFO-CODE, EXTRA-TEXT
        this.lit(K_INFO_CODE);
        this.num(this.u16(v));
        this.lit(K_EXTRA_TEXT);
        this.text(v + 2, ol - 2);
      } else {
        this.lit(K_DATA);
        this.ch(34);
        this.hex(v, ol);
        this.ch(34);
      }
      this.ch(125);
      q = v + ol;
    }
    this.ch(93);
    return true;
  }

  private readonly addr = new Uint8Array(16);
}

const T_OPT = ascii('OPT');
const NULL = ascii('null');
const NAPTR_STRINGS = [K_FLAGS, K_SERVICES, K_REGEXP];
const MALFORMED_JSON = MALFORMED_NAMES.map((n) => ascii(n));

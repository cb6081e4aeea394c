// SDP (RFC 8866) media endpoints, for correlation (one offer or answer per
// call leg). SdpScanner reads them from the body bytes (application/sdp, the
// common case); parseSdp, on strings, is the reference it must agree with and
// the fallback for what the scanner declines. sdpOfBody finds the SDP part
// of a multipart body (RFC 2046, e.g. SDP + ISUP in SIP-I).

import { dottedQuadBytes } from '../../../src/shm/registry.js';
import { nextLf } from './message.js';

export interface SdpMedia {
  /** m= media type: audio, video, image, application, ... */
  media: string;
  address: string;
  port: number;
  /** RTCP endpoint: a=rtcp (RFC 3605), else port + 1; -1 with a=rtcp-mux (RFC 5761: RTCP on the RTP port). */
  rtcpPort: number;
  rtcpAddress: string;
  /** Codec of the first payload type listed: rtpmap encoding name or the RFC 3551 static name. */
  codec: string;
  /** Every payload type listed, with its name when known: "8 PCMA 101 telephone-event". */
  ptmap: string;
}

/** RFC 3551 static payload types. */
export const STATIC_PT: Readonly<Record<number, string>> = {
  0: 'PCMU', 3: 'GSM', 4: 'G723', 5: 'DVI4', 6: 'DVI4', 7: 'LPC', 8: 'PCMA', 9: 'G722', 10: 'L16', 11: 'L16', 12: 'QCELP', 13: 'CN',
  14: 'MPA', 15: 'G728', 16: 'DVI4', 17: 'DVI4', 18: 'G729', 25: 'CelB', 26: 'JPEG', 28: 'nv', 31: 'H261', 32: 'MPV', 33: 'MP2T', 34: 'H263',
};

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The SDP text of a body: the body itself for application/sdp, the SDP part of a multipart body, else null. */
export function sdpOfBody(contentType: string, body: string): string | null {
  const ct = contentType.toLowerCase();
  if (ct.startsWith('application/sdp')) return body;
  if (!ct.startsWith('multipart/')) return null;
  const m = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) return null;
  const boundary = '--' + (m[1] ?? m[2]);
  for (const part of body.split(boundary).slice(1)) {
    if (part.startsWith('--')) break;
    const sep = part.search(/\r?\n\r?\n/);
    if (sep < 0) continue;
    const headers = part.slice(0, sep);
    if (/^content-type\s*:\s*application\/sdp/im.test(headers.trim())) {
      const rest = part.slice(sep).replace(/^\r?\n\r?\n/, '');
      return rest.replace(/\r?\n$/, '');
    }
  }
  return null;
}

/** Media descriptions with a usable endpoint (port > 0, connection address not 0.0.0.0 / ::). */
export function parseSdp(text: string): SdpMedia[] {
  const out: SdpMedia[] = [];
  let sessionAddr = '';
  let cur: { media: string; port: number; nports: number; pts: string[]; addr: string; rtcpPort: number; rtcpAddr: string; mux: boolean; rtpmap: Map<string, string> } | null = null;
  const done = (): void => {
    if (cur === null) return;
    const addr = cur.addr || sessionAddr;
    if (cur.port > 0 && addr !== '' && addr !== '0.0.0.0' && addr !== '::') {
      const names = cur.pts.map((pt) => cur!.rtpmap.get(pt) ?? STATIC_PT[Number(pt)] ?? '');
      const ptmap = cur.pts.map((pt, i) => (names[i] ? `${pt} ${names[i]}` : pt)).join(' ');
      for (let k = 0; k < cur.nports; k++) {
        const port = cur.port + 2 * k;
        out.push({
          media: cur.media,
          address: addr,
          port,
          rtcpPort: cur.mux ? -1 : cur.rtcpPort > 0 && k === 0 ? cur.rtcpPort : port + 1,
          rtcpAddress: cur.rtcpAddr || addr,
          codec: names[0] ?? '',
          ptmap,
        });
      }
    }
    cur = null;
  };
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length < 2 || line[1] !== '=') continue;
    const v = line.slice(2).trim();
    switch (line[0]) {
      case 'c': {
        const f = v.split(/\s+/);
        if (f.length < 3 || f[0] !== 'IN') break;
        const a = f[2].split('/')[0];
        if (f[1] === 'IP4' && !IPV4.test(a)) break;
        if (f[1] !== 'IP4' && f[1] !== 'IP6') break;
        if (cur === null) sessionAddr = a;
        else cur.addr = a;
        break;
      }
      case 'm': {
        done();
        const f = v.split(/\s+/);
        if (f.length < 3) break;
        const [p, n] = f[1].split('/');
        const port = Number(p);
        if (!Number.isInteger(port) || port < 0 || port > 65535) break;
        const nports = n !== undefined && Number.isInteger(Number(n)) && Number(n) > 0 ? Math.min(Number(n), 8) : 1;
        cur = { media: f[0], port, nports, pts: f.slice(3), addr: '', rtcpPort: -1, rtcpAddr: '', mux: false, rtpmap: new Map() };
        break;
      }
      case 'a': {
        if (cur === null) break;
        if (v.startsWith('rtpmap:')) {
          const m = /^rtpmap:(\d+)\s+([^/\s]+)/.exec(v);
          if (m) cur.rtpmap.set(m[1], m[2]);
        } else if (v.startsWith('rtcp:')) {
          const f = v.slice(5).trim().split(/\s+/);
          const port = Number(f[0]);
          if (Number.isInteger(port) && port > 0 && port < 65536) cur.rtcpPort = port;
          if (f.length >= 4 && f[0] !== '' && f[1] === 'IN') cur.rtcpAddr = f[3];
        } else if (v === 'rtcp-mux') cur.mux = true;
        break;
      }
    }
  }
  done();
  return out;
}

// ---- byte scanner: the same media endpoints as parseSdp, from the body bytes ----

/** Where an address came from: none, a dotted quad parsed to a number, or other text (IPv6, host names: parsed as a string when used). */
export const ADDR_NONE = 0;
export const ADDR_V4 = 4;
export const ADDR_TEXT = 1;

/** Media descriptions, payload types and rtpmap lines the scanner keeps; a body with more goes to parseSdp. */
const MAX_MEDIA = 16;
const MAX_PTS = 48;
const MAX_RTPMAP = 48;
/** ptmap bytes kept per media description (more: parseSdp). */
export const PTMAP_CAP = 512;

const STATIC_BYTES: (Uint8Array | undefined)[] = [];
for (const k in STATIC_PT) STATIC_BYTES[Number(k)] = Uint8Array.from(STATIC_PT[Number(k)], (c) => c.charCodeAt(0));

/** ASCII whitespace as JS trim() and \s take it (9-13, space); bytes over 0x7f are never taken for it here (see scan). */
const WS = new Uint8Array(256);
WS[9] = WS[10] = WS[11] = WS[12] = WS[13] = WS[32] = 1;

/** A token's bytes as Number() reads them: NUMBER_NAN, NUMBER_OTHER, else the decimal value (capped at 1e9; empty: 0). */
const NUMBER_NAN = -1;
/** A form only Number() should judge (1e3, 0x1f, +5, 5.0, Infinity): the scanner declines. */
const NUMBER_OTHER = -2;

function numberOf(buf: Uint8Array, off: number, end: number): number {
  let v = 0;
  for (let i = off; i < end; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) {
      const c = buf[off];
      return (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46 || c === 73 ? NUMBER_OTHER : NUMBER_NAN;
    }
    v = v * 10 + d;
    if (v > 1e9) v = 1e9;
  }
  return v;
}

function sameBytes(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const S_RTPMAP = ascii('rtpmap:');
const S_RTCP = ascii('rtcp:');
const S_RTCP_MUX = ascii('rtcp-mux');

/**
 * The SDP media endpoints of a body, from its bytes: what parseSdp finds, per
 * media description (the endpoints of a port count m=audio 49170/2 are
 * port + 2k), into reused arrays: no strings, no allocation. What it does
 * not take on is declined (scan returns -1; the caller uses parseSdp): bytes
 * over 0x7f in the lines that count (parseSdp reads the body as latin1,
 * where 0xa0 is whitespace, and writes UTF-8), numbers in forms only
 * Number() reads, more sections or payload types than the arrays hold.
 */
export class SdpScanner {
  /** Media descriptions with an endpoint after scan(). Per description i: */
  count = 0;
  buf: Uint8Array = new Uint8Array(0);
  /** m= media type: buf[mediaOff, +mediaLen). */
  readonly mediaOff = new Int32Array(MAX_MEDIA);
  readonly mediaLen = new Int32Array(MAX_MEDIA);
  readonly port = new Int32Array(MAX_MEDIA);
  /** Endpoints: port, port + 2, ... (m= port count, at most 8). */
  readonly nports = new Int32Array(MAX_MEDIA);
  /** Connection address (media level, else session level): ADDR_V4 with its value in addr4, or ADDR_TEXT at addrOff/addrLen. */
  readonly addrKind = new Uint8Array(MAX_MEDIA);
  readonly addr4 = new Int32Array(MAX_MEDIA);
  readonly addrOff = new Int32Array(MAX_MEDIA);
  readonly addrLen = new Int32Array(MAX_MEDIA);
  /** a=rtcp port (-1 none: port + 1), a=rtcp-mux, a=rtcp address (ADDR_NONE: the connection address). */
  readonly rtcpPort = new Int32Array(MAX_MEDIA);
  readonly mux = new Uint8Array(MAX_MEDIA);
  readonly rtcpKind = new Uint8Array(MAX_MEDIA);
  readonly rtcp4 = new Int32Array(MAX_MEDIA);
  readonly rtcpOff = new Int32Array(MAX_MEDIA);
  readonly rtcpLen = new Int32Array(MAX_MEDIA);
  /** Codec: STATIC_PT name of codecStatic (>= 0), else buf[codecOff, +codecLen) (an rtpmap name; empty when none). */
  readonly codecStatic = new Int32Array(MAX_MEDIA);
  readonly codecOff = new Int32Array(MAX_MEDIA);
  readonly codecLen = new Int32Array(MAX_MEDIA);
  /** Payload-type map text ("8 PCMA 101 telephone-event") at ptmap[i * PTMAP_CAP, +ptmapLen[i]). */
  readonly ptmap = new Uint8Array(MAX_MEDIA * PTMAP_CAP);
  readonly ptmapLen = new Int32Array(MAX_MEDIA);

  // Session-level connection address.
  private sKind = 0;
  private s4 = 0;
  private sOff = 0;
  private sLen = 0;
  // The m= section being read (its outputs are written at index `count`).
  private open = false;
  private nPts = 0;
  private readonly ptOff = new Int32Array(MAX_PTS);
  private readonly ptLen = new Int32Array(MAX_PTS);
  private nMaps = 0;
  private readonly mapPtOff = new Int32Array(MAX_RTPMAP);
  private readonly mapPtLen = new Int32Array(MAX_RTPMAP);
  private readonly mapNameOff = new Int32Array(MAX_RTPMAP);
  private readonly mapNameLen = new Int32Array(MAX_RTPMAP);
  // Tokens of the current line.
  private readonly tOff = new Int32Array(MAX_PTS + 4);
  private readonly tEnd = new Int32Array(MAX_PTS + 4);

  /**
   * Scans the SDP text in buf[off, end): media descriptions with an endpoint
   * (count), or -1 (declined: use parseSdp). `view`: a DataView indexing the
   * same bytes as buf (the decoder's payloadView), to find line ends four
   * bytes at a time; null: byte by byte.
   */
  scan(buf: Uint8Array, view: DataView | null, off: number, end: number): number {
    this.buf = buf;
    this.count = 0;
    this.sKind = ADDR_NONE;
    this.open = false;
    let ls = off;
    while (ls < end) {
      const le = nextLf(buf, view, ls, end);
      // parseSdp's lines: split at \n, one \r dropped (trim drops it too), "x=" then the value trimmed.
      if (le - ls >= 2 && buf[ls + 1] === 61) {
        const t = buf[ls];
        if (t === 99 || t === 109 || (t === 97 && this.open)) {
          let vs = ls + 2;
          let ve = le;
          while (vs < ve && WS[buf[vs]] === 1) vs++;
          while (ve > vs && WS[buf[ve - 1]] === 1) ve--;
          const ok = t === 99 ? this.connection(vs, ve) : t === 109 ? this.media(vs, ve) : this.attribute(vs, ve);
          if (!ok) return -1;
        }
      }
      ls = le + 1;
    }
    return this.done() ? this.count : -1;
  }

  /**
   * Splits buf[vs, ve) at whitespace into tOff/tEnd, at most `max` tokens.
   * Returns how many; max + 1: more than max; -1: a byte over 0x7f in a token
   * (parseSdp could split there, or write it as UTF-8): declined.
   */
  private tokens(vs: number, ve: number, max: number): number {
    const b = this.buf;
    let n = 0;
    let i = vs;
    let hi = 0;
    while (i < ve) {
      let c = b[i];
      while (c <= 32 && WS[c] === 1) {
        if (++i === ve) return hi > 0x7f ? -1 : n;
        c = b[i];
      }
      if (n === max) return hi > 0x7f ? -1 : max + 1;
      this.tOff[n] = i;
      // Token bytes: above space nearly always (one compare), else not whitespace.
      while (c > 32 || WS[c] === 0) {
        hi |= c;
        if (++i === ve) break;
        c = b[i];
      }
      this.tEnd[n++] = i;
    }
    return hi > 0x7f ? -1 : n;
  }

  /** c=IN IP4|IP6 address[/ttl...]; false: declined. */
  private connection(vs: number, ve: number): boolean {
    const b = this.buf;
    const n = this.tokens(vs, ve, 3);
    if (n < 0) return false;
    if (n < 3) return true;
    const t0 = this.tOff[0];
    const t1 = this.tOff[1];
    if (this.tEnd[0] - t0 !== 2 || b[t0] !== 73 || b[t0 + 1] !== 78) return true; // IN
    if (this.tEnd[1] - t1 !== 3 || b[t1] !== 73 || b[t1 + 1] !== 80) return true; // IP4 / IP6
    const ip4 = b[t1 + 2] === 52;
    if (!ip4 && b[t1 + 2] !== 54) return true;
    const ao = this.tOff[2];
    let ae = ao;
    while (ae < this.tEnd[2] && b[ae] !== 47) ae++;
    const v4 = quad(b, ao, ae);
    if (ip4 && v4 === NOT_QUAD) return true;
    // An empty IP6 address clears it, as parseSdp's '' does.
    const kind = ae === ao ? ADDR_NONE : v4 >= 0 ? ADDR_V4 : ADDR_TEXT;
    if (!this.open) {
      this.sKind = kind;
      this.s4 = v4 | 0;
      this.sOff = ao;
      this.sLen = ae - ao;
    } else {
      const i = this.count;
      this.addrKind[i] = kind;
      this.addr4[i] = v4 | 0;
      this.addrOff[i] = ao;
      this.addrLen[i] = ae - ao;
    }
    return true;
  }

  /** m=media port[/count] proto fmt...; false: declined. */
  private media(vs: number, ve: number): boolean {
    if (!this.done()) return false;
    const b = this.buf;
    const n = this.tokens(vs, ve, MAX_PTS + 3);
    if (n < 0 || n > MAX_PTS + 3) return false;
    if (n < 3) return true;
    // port[/count[/...]]
    const po = this.tOff[1];
    const pe = this.tEnd[1];
    let s1 = po;
    while (s1 < pe && b[s1] !== 47) s1++;
    const port = numberOf(b, po, s1);
    if (port === NUMBER_OTHER) return false;
    if (port < 0 || port > 65535) return true; // not a port: no section (parseSdp's break)
    let nports = 1;
    if (s1 < pe) {
      let s2 = s1 + 1;
      while (s2 < pe && b[s2] !== 47) s2++;
      const c = numberOf(b, s1 + 1, s2);
      if (c === NUMBER_OTHER) return false;
      if (c > 0) nports = c < 8 ? c : 8;
    }
    if (this.count === MAX_MEDIA) return false;
    const i = this.count;
    this.open = true;
    this.mediaOff[i] = this.tOff[0];
    this.mediaLen[i] = this.tEnd[0] - this.tOff[0];
    this.port[i] = port;
    this.nports[i] = nports;
    this.addrKind[i] = ADDR_NONE;
    this.rtcpPort[i] = -1;
    this.mux[i] = 0;
    this.rtcpKind[i] = ADDR_NONE;
    this.nPts = n - 3;
    for (let k = 3; k < n; k++) {
      this.ptOff[k - 3] = this.tOff[k];
      this.ptLen[k - 3] = this.tEnd[k] - this.tOff[k];
    }
    this.nMaps = 0;
    return true;
  }

  /** a=rtpmap, a=rtcp, a=rtcp-mux of the open section; false: declined. */
  private attribute(vs: number, ve: number): boolean {
    if (vs === ve) return true;
    const b = this.buf;
    const c0 = b[vs];
    if (c0 > 0x7f) return false; // 0xa0 is whitespace to trim(): parseSdp could see an attribute behind it
    if (c0 !== 114 || ve - vs < 5) return true; // r
    const i = this.count;
    if (sameBytes(b, vs, S_RTPMAP, 0, 7)) {
      // rtpmap:(\d+)\s+([^/\s]+)
      const po = vs + 7;
      let p = po;
      while (p < ve && b[p] >= 48 && b[p] <= 57) p++;
      const pe = p;
      if (p < ve && b[p] > 0x7f) return false;
      if (pe === po || p >= ve || WS[b[p]] === 0) return true;
      while (p < ve && WS[b[p]] === 1) p++;
      const no = p;
      while (p < ve && b[p] !== 47 && WS[b[p]] === 0 && b[p] < 0x80) p++;
      if (p < ve && b[p] > 0x7f) return false;
      if (p === no) return true;
      if (this.nMaps === MAX_RTPMAP) return false;
      const k = this.nMaps++;
      this.mapPtOff[k] = po;
      this.mapPtLen[k] = pe - po;
      this.mapNameOff[k] = no;
      this.mapNameLen[k] = p - no;
    } else if (sameBytes(b, vs, S_RTCP, 0, 5)) {
      // rtcp:port [IN IP4 address]
      const n = this.tokens(vs + 5, ve, 4);
      if (n < 0) return false;
      if (n === 0) return true;
      const port = numberOf(b, this.tOff[0], this.tEnd[0]);
      if (port === NUMBER_OTHER) return false;
      if (port > 0 && port < 65536) this.rtcpPort[i] = port;
      if (n >= 4 && this.tEnd[1] - this.tOff[1] === 2 && b[this.tOff[1]] === 73 && b[this.tOff[1] + 1] === 78) {
        const v4 = dottedQuadBytes(b, this.tOff[3], this.tEnd[3]);
        this.rtcpKind[i] = v4 >= 0 ? ADDR_V4 : ADDR_TEXT;
        this.rtcp4[i] = v4 | 0;
        this.rtcpOff[i] = this.tOff[3];
        this.rtcpLen[i] = this.tEnd[3] - this.tOff[3];
      }
    } else if (ve - vs >= 8 && sameBytes(b, vs, S_RTCP_MUX, 0, 8)) {
      if (ve - vs === 8) this.mux[i] = 1;
      else for (let p = vs + 8; p < ve; p++) if (b[p] > 0x7f) return false; // "rtcp-mux" + 0xa0 trims to rtcp-mux
    }
    return true;
  }

  /** Ends the open section: kept (count++) when it has a usable endpoint. False: declined. */
  private done(): boolean {
    if (!this.open) return true;
    this.open = false;
    const i = this.count;
    const b = this.buf;
    if (this.addrKind[i] === ADDR_NONE) {
      this.addrKind[i] = this.sKind;
      this.addr4[i] = this.s4;
      this.addrOff[i] = this.sOff;
      this.addrLen[i] = this.sLen;
    }
    const kind = this.addrKind[i];
    if (this.port[i] <= 0 || kind === ADDR_NONE) return true;
    if (kind === ADDR_V4 && this.addr4[i] === 0) return true; // 0.0.0.0: on hold
    if (kind === ADDR_TEXT && this.addrLen[i] === 2 && b[this.addrOff[i]] === 58 && b[this.addrOff[i] + 1] === 58) return true; // ::
    // Names of the payload types: rtpmap (the last line for that text), else the static name.
    const base = i * PTMAP_CAP;
    const out = this.ptmap;
    let at = base;
    const cap = base + PTMAP_CAP;
    this.codecStatic[i] = -1;
    this.codecOff[i] = 0;
    this.codecLen[i] = 0;
    for (let k = 0; k < this.nPts; k++) {
      const po = this.ptOff[k];
      const pl = this.ptLen[k];
      let nameOff = -1;
      let nameLen = 0;
      let stat: Uint8Array | undefined;
      let st = -1;
      for (let j = this.nMaps - 1; j >= 0; j--) {
        if (this.mapPtLen[j] === pl && sameBytes(b, this.mapPtOff[j], b, po, pl)) {
          nameOff = this.mapNameOff[j];
          nameLen = this.mapNameLen[j];
          break;
        }
      }
      if (nameOff < 0) {
        const v = numberOf(b, po, po + pl);
        if (v === NUMBER_OTHER) return false;
        if (v >= 0 && v < STATIC_BYTES.length) stat = STATIC_BYTES[v];
        if (stat !== undefined) st = v;
      }
      if (k === 0) {
        this.codecStatic[i] = st;
        if (nameOff >= 0) {
          this.codecOff[i] = nameOff;
          this.codecLen[i] = nameLen;
        }
      }
      const extra = nameOff >= 0 ? nameLen + 1 : stat !== undefined ? stat.length + 1 : 0;
      if (at + (k > 0 ? 1 : 0) + pl + extra > cap) return false;
      if (k > 0) out[at++] = 32;
      for (let j = 0; j < pl; j++) out[at++] = b[po + j];
      if (nameOff >= 0) {
        out[at++] = 32;
        for (let j = 0; j < nameLen; j++) out[at++] = b[nameOff + j];
      } else if (stat !== undefined) {
        out[at++] = 32;
        for (let j = 0; j < stat.length; j++) out[at++] = stat[j];
      }
    }
    this.ptmapLen[i] = at - base;
    this.count++;
    return true;
  }
}

/** quad(): not four dot-separated 1-3 digit parts. */
const NOT_QUAD = -2;

/**
 * buf[off, end) against parseSdp's IP4 check /^\d{1,3}(\.\d{1,3}){3}$/ and
 * net.isIPv4 (no leading zeros, parts to 255) in one pass: the address as an
 * unsigned number when both take it, -1 when only parseSdp's does (the
 * registry will refuse it), NOT_QUAD otherwise.
 */
function quad(b: Uint8Array, off: number, end: number): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let canonical = true;
  for (let i = off; i < end; i++) {
    const c = b[i];
    if (c === 46) {
      if (digits === 0 || dots === 3) return NOT_QUAD;
      if (part > 255) canonical = false;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (++digits > 3) return NOT_QUAD;
      if (digits === 2 && part === 0) canonical = false; // leading zero
      part = part * 10 + (c - 48);
    } else return NOT_QUAD;
  }
  if (digits === 0 || dots !== 3) return NOT_QUAD;
  if (part > 255) canonical = false;
  return canonical ? v * 256 + part : -1;
}

/** The scanner's result as parseSdp gives it (tests, diagnostics: allocates). */
export function scannedMedia(s: SdpScanner): SdpMedia[] {
  const out: SdpMedia[] = [];
  const b = s.buf;
  const text = (o: number, n: number): string => Buffer.from(b.buffer, b.byteOffset + o, n).toString('latin1');
  const addr = (kind: number, v4: number, o: number, n: number): string =>
    kind === ADDR_V4 ? [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join('.') : text(o, n);
  for (let i = 0; i < s.count; i++) {
    const address = addr(s.addrKind[i], s.addr4[i], s.addrOff[i], s.addrLen[i]);
    const codec = s.codecStatic[i] >= 0 ? STATIC_PT[s.codecStatic[i]] : text(s.codecOff[i], s.codecLen[i]);
    const ptmap = Buffer.from(s.ptmap.subarray(i * PTMAP_CAP, i * PTMAP_CAP + s.ptmapLen[i])).toString('latin1');
    for (let k = 0; k < s.nports[i]; k++) {
      const port = s.port[i] + 2 * k;
      out.push({
        media: text(s.mediaOff[i], s.mediaLen[i]),
        address,
        port,
        rtcpPort: s.mux[i] ? -1 : s.rtcpPort[i] > 0 && k === 0 ? s.rtcpPort[i] : port + 1,
        rtcpAddress: s.rtcpKind[i] !== ADDR_NONE ? addr(s.rtcpKind[i], s.rtcp4[i], s.rtcpOff[i], s.rtcpLen[i]) : address,
        codec,
        ptmap,
      });
    }
  }
  return out;
}

/** The bytes of a STATIC_PT name (the scanner's codecStatic). */
export function staticName(pt: number): Uint8Array {
  return STATIC_BYTES[pt]!;
}

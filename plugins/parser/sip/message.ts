// One SIP message (RFC 3261 §7), parsed in place: offsets into the caller's
// buffer, one reused SipMessage per parser, nothing allocated unless a
// header is folded (then only that value becomes a string, rarely).
//
// Accepts a request line `METHOD SP URI SP SIP/2.0` or a status line
// `SIP/2.0 SP 3DIGIT SP reason`, header lines `name: value` (names matched
// case-insensitively, compact forms mapped: i f t m v l c k s e o r u x b a
// j d y n), continuation lines (leading SP/HT: folded into the previous
// header), the empty line, then Content-Length bytes of body. Several
// headers of one name are kept in order (multi-value); labels use the first.

export const enum SipReject {
  None = 0,
  /** Not a request or status line. */
  StartLine,
  /** No empty line ending the headers within the data. */
  HeadersIncomplete,
  /** A header line without a colon, or a continuation before any header. */
  BadHeader,
  /** More headers than MAX_HEADERS. */
  TooManyHeaders,
  /** Content-Length not a number. */
  BadContentLength,
  /** Content-Length says more bytes than there are (UDP: the body is cut short and the message still emitted). */
  BodyTruncated,
  /** No Call-ID header. */
  NoCallId,
  /** No CSeq header. */
  NoCSeq,
  /** The message is bigger than the parser's limit (TCP). */
  TooLarge,
  /** Bytes dropped while resynchronising a TCP stream on a start line. */
  Resync,
}

export const SIP_REJECT_NAMES = [
  'none',
  'start_line',
  'headers_incomplete',
  'bad_header',
  'too_many_headers',
  'bad_content_length',
  'body_truncated',
  'no_call_id',
  'no_cseq',
  'too_large',
  'resync',
] as const;

export const MAX_HEADERS = 96;

// Header ids of the ones we look at.
export const H_OTHER = 0;
export const H_CALL_ID = 1;
export const H_FROM = 2;
export const H_TO = 3;
export const H_CSEQ = 4;
export const H_USER_AGENT = 5;
export const H_CONTENT_LENGTH = 6;
export const H_CONTENT_TYPE = 7;
export const H_VIA = 8;
export const H_CONTACT = 9;
const H_COUNT = 10;

/** Full names (lowercase) → id; compact single letters → id (0 for compact forms we do not use). */
const NAMES: [string, number][] = [
  ['call-id', H_CALL_ID],
  ['from', H_FROM],
  ['to', H_TO],
  ['cseq', H_CSEQ],
  ['user-agent', H_USER_AGENT],
  ['content-length', H_CONTENT_LENGTH],
  ['content-type', H_CONTENT_TYPE],
  ['via', H_VIA],
  ['contact', H_CONTACT],
];
const NAME_BYTES = NAMES.map(([n]) => Uint8Array.from(n, (c) => c.charCodeAt(0)));
const COMPACT = new Uint8Array(128);
COMPACT[105] = H_CALL_ID; // i
COMPACT[102] = H_FROM; // f
COMPACT[116] = H_TO; // t
COMPACT[108] = H_CONTENT_LENGTH; // l
COMPACT[99] = H_CONTENT_TYPE; // c
COMPACT[118] = H_VIA; // v
COMPACT[109] = H_CONTACT; // m

/** RFC 3261 compact forms, for the payload's readers: letter → full name. */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  i: 'Call-ID', f: 'From', t: 'To', m: 'Contact', v: 'Via', l: 'Content-Length', c: 'Content-Type', k: 'Supported', s: 'Subject',
  e: 'Content-Encoding', o: 'Event', r: 'Refer-To', u: 'Allow-Events', x: 'Session-Expires', b: 'Referred-By', a: 'Accept-Contact',
  j: 'Reject-Contact', d: 'Request-Disposition', y: 'Identity', n: 'Identity-Info',
};

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** NAMES indexes by (length, first letter): two names share one at most (call-id, contact). Looking every name up cost a quarter of parse (measured). */
const BY_SHAPE = new Int8Array(2 * (16 << 7)).fill(-1);
const NAME_IDS = Uint8Array.from(NAMES, ([, id]) => id);
NAME_BYTES.forEach((n, k) => {
  const at = 2 * ((n.length << 7) | n[0]);
  BY_SHAPE[BY_SHAPE[at] < 0 ? at : at + 1] = k;
});

/**
 * The header names as an automaton over their bytes, run by parse() while it
 * scans a line for its colon, so a name is identified in the same pass that
 * finds its end (comparing it after cost a quarter of parse, measured).
 * State 0 is "no name of ours" (absorbing), 1 the start; NAME_STEP[s << 8 | c]
 * is the next state, NAME_ID[s] the id of the name (or compact form) ending in s.
 */
const NAME_STATES = 2 + 26 + NAMES.reduce((n, [name]) => n + name.length, 0); // at most: a trie of the names, one-letter forms
const NAME_STEP = new Uint8Array(NAME_STATES << 8);
const NAME_ID = new Uint8Array(NAME_STATES);
{
  let next = 2;
  const edge = (s: number, c: number): number => {
    const at = (s << 8) | c;
    if (NAME_STEP[at] === 0) {
      NAME_STEP[at] = next;
      if (c >= 97 && c <= 122) NAME_STEP[at - 32] = next; // upper case
      next++;
    }
    return NAME_STEP[at];
  };
  for (const [name, id] of NAMES) NAME_ID[[...name].reduce((s, ch) => edge(s, ch.charCodeAt(0)), 1)] = id;
  for (let c = 97; c <= 122; c++) if (COMPACT[c] !== H_OTHER) NAME_ID[edge(1, c)] = COMPACT[c];
}

export function headerId(buf: Uint8Array, off: number, len: number): number {
  const c = lower(buf[off]);
  if (len === 1) return c < 128 ? COMPACT[c] : H_OTHER;
  if (len >= 16 || c >= 128) return H_OTHER;
  const at = 2 * ((len << 7) | c);
  for (let t = 0; t < 2; t++) {
    const k = BY_SHAPE[at + t];
    if (k < 0) return H_OTHER;
    const n = NAME_BYTES[k];
    let j = 1;
    while (j < len && lower(buf[off + j]) === n[j]) j++;
    if (j === len) return NAME_IDS[k];
  }
  return H_OTHER;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

/** SIP methods and "SIP/2.0": the start of a start line, for the port-less heuristic and TCP resync. */
const STARTS = ['SIP/2.0 ', 'INVITE ', 'ACK ', 'BYE ', 'CANCEL ', 'REGISTER ', 'OPTIONS ', 'INFO ', 'PRACK ', 'SUBSCRIBE ', 'NOTIFY ', 'REFER ', 'MESSAGE ', 'UPDATE ', 'PUBLISH '].map(
  (s) => Uint8Array.from(s, (c) => c.charCodeAt(0)),
);

/** Does buf[off, end) begin like a SIP start line (a known method or SIP/2.0, then a space)? */
export function looksLikeStartLine(buf: Uint8Array, off: number, end: number): boolean {
  const c0 = buf[off];
  // Cheap reject: every start begins with an upper-case letter among A B C I M N O P R S U.
  if (end - off < 4 || c0 < 65 || c0 > 85) return false;
  for (let k = 0; k < STARTS.length; k++) {
    const s = STARTS[k];
    if (s[0] !== c0 || end - off < s.length) continue;
    let j = 1;
    while (j < s.length && buf[off + j] === s[j]) j++;
    if (j === s.length) return true;
  }
  return false;
}

const SIP20 = [83, 73, 80, 47, 50, 46, 48]; // SIP/2.0

/** Is buf[off, end) (not empty) the beginning of a start line cut short: a proper prefix of a known method or `SIP/2.0`, and its space? */
export function startLinePrefix(buf: Uint8Array, off: number, end: number): boolean {
  const n = end - off;
  if (n <= 0) return false;
  for (let k = 0; k < STARTS.length; k++) {
    const s = STARTS[k];
    if (n >= s.length) continue;
    let j = 0;
    while (j < n && buf[off + j] === s[j]) j++;
    if (j === n) return true;
  }
  return false;
}

/**
 * Is buf[off, end) a whole SIP start line, up to its line end? `SIP/2.0`,
 * a space and a 3-digit status; or a known method, a space, a request-URI
 * with no space, a space and `SIP/2.0` (RFC 3261 §7.1, §7.2). Stricter than
 * looksLikeStartLine: it claims a TCP connection on any port
 * (StreamParser.probeStream), where HTTP's `OPTIONS * HTTP/1.1` must not pass.
 */
export function isSipStartLine(buf: Uint8Array, off: number, end: number): boolean {
  if (!looksLikeStartLine(buf, off, end)) return false;
  const lim = end - off > 2048 ? off + 2048 : end;
  let eol = off;
  while (eol < lim && buf[eol] !== 10) eol++;
  if (eol >= lim) return false;
  if (eol > off && buf[eol - 1] === 13) eol--;
  if (buf[off + 3] === 47) {
    // SIP/2.0 SP 3DIGIT (reason phrase optional here)
    if (eol - off < 11) return false;
    for (let k = 8; k < 11; k++) if (buf[off + k] < 48 || buf[off + k] > 57) return false;
    return eol - off === 11 || buf[off + 11] === 32;
  }
  let sp = off;
  while (buf[sp] !== 32) sp++; // looksLikeStartLine found the method's space
  let sp2 = sp + 1;
  while (sp2 < eol && buf[sp2] !== 32) sp2++;
  if (sp2 === sp + 1 || eol - sp2 !== 8) return false;
  for (let k = 0; k < 7; k++) if (buf[sp2 + 1 + k] !== SIP20[k]) return false;
  return true;
}

/**
 * The first \n in buf[p, end), else end. With `view` (the same bytes as
 * buf), four bytes at a time: a word holds \n where x = word ^ 0x0a0a0a0a
 * has a zero byte, i.e. (x - 0x01010101) & ~x & 0x80808080 is non-zero.
 */
export function nextLf(buf: Uint8Array, view: DataView | null, p: number, end: number): number {
  if (view !== null) {
    // Eight bytes a round (two words): fewer loop checks; the word holding \n is found after.
    while (p + 8 <= end) {
      const x = view.getInt32(p, true) ^ 0x0a0a0a0a;
      const y = view.getInt32(p + 4, true) ^ 0x0a0a0a0a;
      const hx = (x - 0x01010101) & ~x & 0x80808080;
      if ((hx | ((y - 0x01010101) & ~y & 0x80808080)) !== 0) {
        if (hx === 0) p += 4;
        break;
      }
      p += 8;
    }
  }
  while (p < end && buf[p] !== 10) p++;
  return p;
}

export class SipMessage {
  buf: Uint8Array = new Uint8Array(0);
  /** parse()'s view of buf, or null. */
  view: DataView | null = null;
  /** Message bytes [off, end): start line through body. */
  off = 0;
  end = 0;
  isRequest = false;
  /** Start line without CRLF. */
  lineOff = 0;
  lineLen = 0;
  methodOff = 0;
  methodLen = 0;
  uriOff = 0;
  uriLen = 0;
  /** Response: code (100-699), its 3 digits at statusOff; reason. */
  status = 0;
  statusOff = 0;
  reasonOff = 0;
  reasonLen = 0;
  headerCount = 0;
  readonly hNameOff = new Int32Array(MAX_HEADERS);
  readonly hNameLen = new Int32Array(MAX_HEADERS);
  readonly hValOff = new Int32Array(MAX_HEADERS);
  readonly hValLen = new Int32Array(MAX_HEADERS);
  readonly hFolded = new Uint8Array(MAX_HEADERS);
  readonly hId = new Uint8Array(MAX_HEADERS);
  /** Index of the first header of each id, -1 absent. */
  readonly first = new Int32Array(H_COUNT);
  contentLength = -1;
  bodyOff = 0;
  bodyLen = 0;
  /** CSeq method (after the number). */
  cseqMethodOff = 0;
  cseqMethodLen = 0;
  reject: SipReject = SipReject.None;
  /** The body was cut short (UDP): Content-Length exceeded the datagram. */
  truncated = false;
  /** Content-Length was not a number (UDP: the body is the rest of the datagram). */
  badLength = false;

  /**
   * Parses the message starting at buf[off], within [off, end). `stream`:
   * the body must be complete (TCP) and the message may be followed by
   * another; without it (UDP) a missing Content-Length means "to the end"
   * and a short body is cut (flagged). Returns the message's length in
   * bytes, 0 when more bytes are needed (stream only), -1 on a reject
   * (reason in `reject`). `view`: a DataView indexing the same bytes as
   * buf (the decoder's payloadView), to find line ends four bytes at a time.
   */
  parse(buf: Uint8Array, off: number, end: number, stream: boolean, view: DataView | null = null): number {
    this.buf = buf;
    this.view = view;
    this.off = off;
    this.reject = SipReject.None;
    this.truncated = false;
    this.badLength = false;
    this.headerCount = 0;
    const first = this.first;
    for (let i = 0; i < H_COUNT; i++) first[i] = -1; // not fill(): a builtin call per message cost more
    this.contentLength = -1;
    this.status = 0;
    // Start line.
    let eol = nextLf(buf, view, off, end);
    if (eol >= end) return stream && end - off < 8192 ? 0 : this.fail(SipReject.HeadersIncomplete);
    let lineEnd = eol > off && buf[eol - 1] === 13 ? eol - 1 : eol;
    this.lineOff = off;
    this.lineLen = lineEnd - off;
    if (!this.startLine(buf, off, lineEnd)) return this.fail(SipReject.StartLine);
    // Headers.
    let p = eol + 1;
    let n = 0;
    for (;;) {
      if (p >= end) {
        // A datagram cut before the empty line (snap length, or a broken sender): keep the headers seen.
        if (stream) return 0;
        this.truncated = true;
        break;
      }
      eol = nextLf(buf, view, p, end);
      if (eol >= end) {
        if (stream) return 0;
        this.truncated = true; // the last line is cut: parse it as far as it goes
      }
      lineEnd = eol > p && buf[eol - 1] === 13 ? eol - 1 : eol;
      if (lineEnd === p) {
        p = eol + 1;
        break; // empty line: end of headers
      }
      if (isSpace(buf[p])) {
        // Continuation: extend the previous header's value over this line.
        if (n === 0) return this.fail(SipReject.BadHeader);
        this.hValLen[n - 1] = trimEnd(buf, this.hValOff[n - 1], lineEnd) - this.hValOff[n - 1];
        this.hFolded[n - 1] = 1;
        p = eol + 1;
        continue;
      }
      if (n === MAX_HEADERS) return this.fail(SipReject.TooManyHeaders);
      let colon = p;
      let s = 1;
      for (; colon < lineEnd; colon++) {
        const c = buf[colon];
        if (c === 58) break;
        s = NAME_STEP[(s << 8) | c];
      }
      if (colon === lineEnd) {
        if (this.truncated) break;
        return this.fail(SipReject.BadHeader);
      }
      const nameEnd = trimEnd(buf, p, colon);
      if (nameEnd === p) return this.fail(SipReject.BadHeader);
      // Spaces before the colon (legal, rare) took the automaton off its names.
      const id = nameEnd === colon ? NAME_ID[s] : headerId(buf, p, nameEnd - p);
      let v = colon + 1;
      while (v < lineEnd && isSpace(buf[v])) v++;
      this.hNameOff[n] = p;
      this.hNameLen[n] = nameEnd - p;
      this.hValOff[n] = v;
      this.hValLen[n] = trimEnd(buf, v, lineEnd) - v;
      this.hFolded[n] = 0;
      this.hId[n] = id;
      if (id !== H_OTHER && this.first[id] < 0) this.first[id] = n;
      n++;
      p = eol + 1;
    }
    this.headerCount = n;
    if (p > end) p = end;
    // Content-Length.
    const cl = this.first[H_CONTENT_LENGTH];
    if (cl >= 0) {
      let v = 0;
      const vo = this.hValOff[cl];
      const vl = this.hValLen[cl];
      let ok = vl > 0 && vl <= 9;
      for (let j = 0; j < vl && ok; j++) {
        const c = buf[vo + j] - 48;
        ok = c >= 0 && c <= 9;
        v = v * 10 + c;
      }
      // Over TCP a message cannot be framed without it; in a datagram the body is the rest (counted, emitted).
      if (!ok && stream) return this.fail(SipReject.BadContentLength);
      this.badLength = !ok;
      this.contentLength = ok ? v : -1;
    }
    this.bodyOff = p;
    const avail = end - p;
    if (this.contentLength < 0) this.bodyLen = stream ? 0 : avail;
    else if (this.contentLength <= avail) this.bodyLen = this.contentLength;
    else if (stream) return 0;
    else {
      this.bodyLen = avail;
      this.truncated = true;
    }
    this.end = p + this.bodyLen;
    if (this.first[H_CALL_ID] < 0) return this.fail(SipReject.NoCallId);
    const cs = this.first[H_CSEQ];
    if (cs < 0) return this.fail(SipReject.NoCSeq);
    // CSeq method: after the number and spaces.
    let q = this.hValOff[cs];
    const qe = q + this.hValLen[cs];
    while (q < qe && !isSpace(buf[q])) q++;
    while (q < qe && isSpace(buf[q])) q++;
    this.cseqMethodOff = q;
    let r = q;
    while (r < qe && !isSpace(buf[r])) r++;
    this.cseqMethodLen = r - q;
    return this.end - off;
  }

  private fail(r: SipReject): number {
    this.reject = r;
    return -1;
  }

  private startLine(buf: Uint8Array, off: number, end: number): boolean {
    if (end - off >= 12 && matchSip20(buf, off) && buf[off + 7] === 32) {
      // SIP/2.0 SP 3DIGIT SP reason
      const d = off + 8;
      let code = 0;
      for (let j = 0; j < 3; j++) {
        const c = buf[d + j] - 48;
        if (c < 0 || c > 9) return false;
        code = code * 10 + c;
      }
      if (code < 100 || code > 699) return false;
      if (end > d + 3 && buf[d + 3] !== 32) return false;
      this.isRequest = false;
      this.status = code;
      this.statusOff = d;
      this.reasonOff = end > d + 4 ? d + 4 : end;
      this.reasonLen = end - this.reasonOff;
      this.methodLen = 0;
      this.uriLen = 0;
      return true;
    }
    // METHOD SP URI SP SIP/2.0: the method is a token of letters.
    let s1 = off;
    while (s1 < end && buf[s1] !== 32) {
      const c = buf[s1];
      if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 33 || c === 37 || c === 42 || c === 95 || c === 43 || c === 96 || c === 39 || c === 126 || (c >= 48 && c <= 57))) return false;
      s1++;
    }
    if (s1 === off || s1 >= end) return false;
    if (end - off < 8 || !matchSip20(buf, end - 7) || buf[end - 8] !== 32) return false;
    const uo = s1 + 1;
    const ue = end - 8;
    if (ue <= uo) return false;
    this.isRequest = true;
    this.methodOff = off;
    this.methodLen = s1 - off;
    this.uriOff = uo;
    this.uriLen = ue - uo;
    return true;
  }

  /** Value bytes of the first header of `id`: its index, or -1. */
  header(id: number): number {
    return this.first[id];
  }

  /** A header's value as a string, folding collapsed to one space (slow path: allocates). */
  valueString(i: number): string {
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.hValOff[i], this.hValLen[i]).toString('utf8');
    return this.hFolded[i] ? s.replace(/\r?\n[ \t]+/g, ' ') : s;
  }

  nameString(i: number): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + this.hNameOff[i], this.hNameLen[i]).toString('utf8');
  }

  /** Body as a latin1 string (SDP is ASCII; slow path). */
  bodyString(): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + this.bodyOff, this.bodyLen).toString('latin1');
  }
}

function matchSip20(buf: Uint8Array, o: number): boolean {
  for (let j = 0; j < 7; j++) if (buf[o + j] !== SIP20[j]) return false;
  return true;
}

function trimEnd(buf: Uint8Array, start: number, end: number): number {
  while (end > start && isSpace(buf[end - 1])) end--;
  return end;
}

/**
 * In a From/To value: the address (inside <...>, else up to the first ';'),
 * written as [off, len] into out. Returns false when empty.
 */
export function addrSpec(buf: Uint8Array, off: number, len: number, out: Int32Array): boolean {
  const end = off + len;
  // The first '<' (a display name holding '<' is legal but unseen; tshark does the same).
  let lt = -1;
  for (let i = off; i < end; i++) {
    if (buf[i] === 60) {
      lt = i;
      break;
    }
  }
  if (lt >= 0) {
    let gt = lt + 1;
    while (gt < end && buf[gt] !== 62) gt++;
    out[0] = lt + 1;
    out[1] = gt - lt - 1;
    return out[1] > 0;
  }
  let e = off;
  while (e < end && buf[e] !== 59) e++;
  out[0] = off;
  out[1] = trimEnd(buf, off, e) - off;
  return out[1] > 0;
}

const TAG = [116, 97, 103, 61]; // tag=

/** The `tag` parameter of a From/To value (after any <...>): [off, len], false when absent. */
export function tagParam(buf: Uint8Array, off: number, len: number, out: Int32Array): boolean {
  const end = off + len;
  let i = off;
  // Skip past the address part: parameters after '>' if there is one.
  let gt = -1;
  for (let k = off; k < end; k++) {
    if (buf[k] === 62) {
      gt = k;
      break;
    }
  }
  if (gt >= 0) i = gt + 1;
  return tagFrom(buf, i, end, out, 0);
}

/** tagParam's search for ;tag= from i: the value into out[at], out[at + 1]. */
function tagFrom(buf: Uint8Array, i: number, end: number, out: Int32Array, at: number): boolean {
  for (; i < end; i++) {
    if (buf[i] !== 59) continue;
    let p = i + 1;
    while (p < end && isSpace(buf[p])) p++;
    let j = 0;
    while (j < 4 && p + j < end && lower(buf[p + j]) === TAG[j]) j++;
    if (j === 4) {
      const vo = p + 4;
      let ve = vo;
      while (ve < end && buf[ve] !== 59 && !isSpace(buf[ve])) ve++;
      out[at] = vo;
      out[at + 1] = ve - vo;
      return ve > vo;
    }
  }
  return false;
}

/**
 * addrSpec and tagParam of one From/To value in one pass over it (the labels
 * read every message's From and To): the address into out[0], out[1], the
 * tag into out[2], out[3]. Returns ADDR_FOUND | TAG_FOUND as they are there.
 */
export function addrAndTag(buf: Uint8Array, off: number, len: number, out: Int32Array): number {
  const end = off + len;
  // The first '<', and the first '>' (tagParam starts after it, wherever it is).
  let lt = -1;
  let gt = -1;
  for (let i = off; i < end; i++) {
    const c = buf[i];
    if (c === 60) {
      lt = i;
      break;
    }
    if (c === 62 && gt < 0) gt = i;
  }
  let found = 0;
  if (lt >= 0) {
    let g = lt + 1;
    while (g < end && buf[g] !== 62) g++;
    out[0] = lt + 1;
    out[1] = g - lt - 1;
    if (out[1] > 0) found = ADDR_FOUND;
    if (gt < 0 && g < end) gt = g;
  } else {
    let e = off;
    while (e < end && buf[e] !== 59) e++;
    out[0] = off;
    out[1] = trimEnd(buf, off, e) - off;
    if (out[1] > 0) found = ADDR_FOUND;
  }
  if (tagFrom(buf, gt >= 0 ? gt + 1 : off, end, out, 2)) found |= TAG_FOUND;
  return found;
}

export const ADDR_FOUND = 1;
export const TAG_FOUND = 2;

/**
 * The user and host of a URI at buf[off, off+len) (an address from addrSpec,
 * or a Request-URI), as tshark's `sip.from.user` / `sip.from.host` read them:
 * after the scheme's ':', the user is what comes before an '@' (none without
 * one), the host what follows up to a port, parameter or header (an IPv6
 * reference keeps its brackets). A `tel:` URI's number is its user. User
 * into out[0], out[1], host into out[2], out[3]; returns USER_FOUND | HOST_FOUND.
 */
export function uriParts(buf: Uint8Array, off: number, len: number, out: Int32Array): number {
  const end = off + len;
  let i = off;
  while (i < end && buf[i] !== 58) i++; // the scheme's ':'
  if (i >= end) return 0;
  const tel = i - off === 3 && lower(buf[off]) === 116 && lower(buf[off + 1]) === 101 && lower(buf[off + 2]) === 108;
  const s = i + 1;
  let found = 0;
  if (tel) {
    let e = s;
    while (e < end && buf[e] !== 59 && buf[e] !== 63) e++;
    out[0] = s;
    out[1] = e - s;
    return e > s ? USER_FOUND : 0;
  }
  let at = -1;
  for (let k = s; k < end; k++) {
    const c = buf[k];
    if (c === 64) {
      at = k;
      break;
    }
    if (c === 63 || c === 62) break; // headers, or past the URI
  }
  let h = s;
  if (at >= 0) {
    out[0] = s;
    out[1] = at - s;
    if (at > s) found = USER_FOUND;
    h = at + 1;
  }
  let e = h;
  if (h < end && buf[h] === 91) {
    while (e < end && buf[e] !== 93) e++;
    if (e < end) e++;
  } else while (e < end && buf[e] !== 58 && buf[e] !== 59 && buf[e] !== 63 && buf[e] !== 62 && !isSpace(buf[e])) e++;
  out[2] = h;
  out[3] = e - h;
  if (e > h) found |= HOST_FOUND;
  return found;
}

export const USER_FOUND = 1;
export const HOST_FOUND = 2;

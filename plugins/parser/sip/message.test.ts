// SipMessage's fast paths against the plain forms they replaced: the line
// search four bytes at a time (nextLf with a DataView), header names by
// (length, first letter), and From/To address and tag in one pass. Whole
// parses with and without the view must agree on every field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES } from '../../../test/helpers/otus-replay.js';
import { mutate, payloadsOf, rng } from '../../../test/helpers/voip-fuzz.js';
import { ADDR_FOUND, addrAndTag, addrSpec, headerId, HOST_FOUND, isSipStartLine, nextLf, SipMessage, TAG_FOUND, uriParts, USER_FOUND } from './message.js';

const FILES = ['suricata-verify--sip-body-frames.pcap', 'suricata-verify--sip-compact-form.pcap', 'suricata-verify--sip-header-multi-value.pcap', 'suricata-verify--sip-sdp.pcap', 'PcapPlusPlus--sip_reqs.pcap', 'PcapPlusPlus--sip_resp.pcap', 'PcapPlusPlus--sdp.pcap', 'PcapPlusPlus--sip_non_default_port.pcap', 'zeek--sip-invalid-content-length.pcap', 'zeek--sip-long-request-response-paths.pcap', 'suricata-verify--sip-tcp-method.pcap'].map((f) => join(FIXTURES, f));
const SEEDS = payloadsOf(FILES, () => true);

test('nextLf: a word at a time finds the same \\n as a byte at a time, never past end', () => {
  const r = rng(0x11f);
  const buf = new Uint8Array(300);
  const view = new DataView(buf.buffer);
  for (let i = 0; i < 200_000; i++) {
    for (let j = 0; j < buf.length; j++) buf[j] = r() < 0.03 ? 10 : Math.floor(r() * 256);
    const p = Math.floor(r() * 100);
    const end = p + Math.floor(r() * 150);
    let want = p;
    while (want < end && buf[want] !== 10) want++;
    assert.equal(nextLf(buf, view, p, end), want);
    assert.equal(nextLf(buf, null, p, end), want);
  }
});

/** headerId as it was: every known name compared. */
const NAMES: [string, number][] = [['call-id', 1], ['from', 2], ['to', 3], ['cseq', 4], ['user-agent', 5], ['content-length', 6], ['content-type', 7], ['via', 8], ['contact', 9]];
function headerIdBefore(b: Uint8Array, off: number, len: number): number {
  if (len === 1) return headerId(b, off, len); // compact forms: unchanged
  const s = Buffer.from(b.subarray(off, off + len)).toString('latin1').replace(/[A-Z]/g, (c) => c.toLowerCase());
  for (const [n, id] of NAMES) if (n === s) return id;
  return 0;
}

test('headerId: names found by length and first letter, as by comparing every name', () => {
  const names = ['Call-ID', 'CALL-ID', 'call-id', 'Contact', 'CONTACT', 'From', 'To', 'CSeq', 'cseq', 'User-Agent', 'Content-Length', 'Content-Type', 'Via', 'Max-Forwards', 'Allow', 'Call-Info', 'Contacts', 'Cseq ', 'From:', 'Tó', 'C', 'v', 'X-Call-ID', 'contact\u00c9', 'Content-Lengtx', 'User-Agenu', 'via.'];
  for (const n of names) {
    const b = new Uint8Array(Buffer.from(n, 'latin1'));
    assert.equal(headerId(b, 0, b.length), headerIdBefore(b, 0, b.length), n);
  }
  const r = rng(0x4ad);
  const out = new Uint8Array(64);
  const seeds = NAMES.map(([n]) => new Uint8Array(Buffer.from(n)));
  for (let i = 0; i < 300_000; i++) {
    const n = Math.min(mutate(seeds[i % seeds.length], out, r), 40);
    if (n === 0) continue;
    assert.equal(headerId(out, 0, n), headerIdBefore(out, 0, n), Buffer.from(out.subarray(0, n)).toString('latin1'));
  }
});

test("parse: each header line's name identified as by comparing every name (the automaton in the colon scan)", () => {
  const r = rng(0x5e1);
  const name = new Uint8Array(64);
  const seeds = [...NAMES.map(([n]) => n), 'Max-Forwards', 'c', 'i', 'M', 'Call-ID  ', 'To\t'].map((n) => new Uint8Array(Buffer.from(n, 'latin1')));
  const head = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n', 'latin1');
  const tail = Buffer.from(': v\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n', 'latin1');
  const buf = new Uint8Array(256);
  const m = new SipMessage();
  let checked = 0;
  for (let i = 0; i < 200_000; i++) {
    const n = i < seeds.length ? (name.set(seeds[i]), seeds[i].length) : Math.min(mutate(seeds[i % seeds.length], name, r), 40);
    // A name is what a line holds before its colon: no colon, line end or leading blank in it.
    if (n === 0 || name[0] === 32 || name[0] === 9 || name.subarray(0, n).some((c) => c === 58 || c === 10 || c === 13)) continue;
    buf.set(head, 0);
    buf.set(name.subarray(0, n), head.length);
    buf.set(tail, head.length + n);
    const len = head.length + n + tail.length;
    assert.equal(m.parse(buf, 0, len, false), len);
    let e = n;
    while (e > 0 && (name[e - 1] === 32 || name[e - 1] === 9)) e--;
    assert.equal(m.hId[0], headerIdBefore(name, 0, e), Buffer.from(name.subarray(0, n)).toString('latin1'));
    checked++;
  }
  assert.ok(checked > 100_000, `${checked} names checked`);
});

/** tagParam as it was, over a fresh out array. */
function tagBefore(b: Uint8Array, off: number, len: number): number[] | null {
  const end = off + len;
  let i = off;
  for (let k = off; k < end; k++) {
    if (b[k] === 62) {
      i = k + 1;
      break;
    }
  }
  for (; i < end; i++) {
    if (b[i] !== 59) continue;
    let p = i + 1;
    while (p < end && (b[p] === 32 || b[p] === 9)) p++;
    if (p + 4 <= end && Buffer.from(b.subarray(p, p + 4)).toString('latin1').toLowerCase() === 'tag=') {
      let ve = p + 4;
      while (ve < end && b[ve] !== 59 && b[ve] !== 32 && b[ve] !== 9) ve++;
      return ve > p + 4 ? [p + 4, ve - p - 4] : null;
    }
  }
  return null;
}

test('addrAndTag: the address and tag of a From/To value in one pass, as addrSpec and tagParam give them', () => {
  const values = ['"Alice" <sip:alice@example.com>;tag=1928301774', '<sip:bob@example.com>', 'sip:x@y;tag=abc', 'a>b<c>;tag=1', '>;tag=2<sip:z>', '<>;TAG=3', '  sip:u@h ; tag = 4', ';tag=;tag=5', 'Bob <sip:b@h>;foo;tag=6 ;x', '<sip:a@b', 'x;TaG=7\t', ''];
  const seeds = values.map((v) => new Uint8Array(Buffer.from(v)));
  const r = rng(0xa7);
  const buf = new Uint8Array(256);
  const out = new Int32Array(4);
  const a = new Int32Array(2);
  for (let i = 0; i < 400_000; i++) {
    const n = i < seeds.length ? (buf.set(seeds[i]), seeds[i].length) : mutate(seeds[i % seeds.length], buf, r);
    const off = i & 3;
    const v = buf.slice(0, n);
    buf.fill(59, 0, 4); // ';' before the value: the search must start at off
    buf.set(v, off);
    const found = addrAndTag(buf, off, n, out);
    const hasAddr = addrSpec(buf, off, n, a);
    assert.equal((found & ADDR_FOUND) !== 0, hasAddr);
    if (hasAddr) assert.deepEqual([out[0], out[1]], [a[0], a[1]]);
    const tag = tagBefore(buf, off, n);
    assert.deepEqual((found & TAG_FOUND) !== 0 ? [out[2], out[3]] : null, tag, Buffer.from(v).toString('latin1'));
  }
});

const FIELDS = ['reject', 'truncated', 'badLength', 'isRequest', 'lineOff', 'lineLen', 'methodOff', 'methodLen', 'uriOff', 'uriLen', 'status', 'statusOff', 'reasonOff', 'reasonLen', 'headerCount', 'contentLength', 'bodyOff', 'bodyLen', 'end', 'cseqMethodOff', 'cseqMethodLen'] as const;

function snapshot(m: SipMessage, n: number): unknown[] {
  const h = m.headerCount;
  return [n, ...FIELDS.map((f) => m[f]), [...m.first], [...m.hNameOff.subarray(0, h)], [...m.hNameLen.subarray(0, h)], [...m.hValOff.subarray(0, h)], [...m.hValLen.subarray(0, h)], [...m.hFolded.subarray(0, h)], [...m.hId.subarray(0, h)]];
}

test('parse with the payload view gives every field parse without it gives, on fixture messages and mutations (UDP and stream)', () => {
  assert.ok(SEEDS.length > 20);
  const r = rng(0x9a3);
  const buf = new Uint8Array(Math.max(...SEEDS.map((s) => s.length)) * 2 + 80);
  const view = new DataView(buf.buffer);
  const a = new SipMessage();
  const b = new SipMessage();
  for (let i = 0; i < 200_000; i++) {
    const seed = SEEDS[i % SEEDS.length];
    const off = 1 + (i % 7);
    const n = i < SEEDS.length ? (buf.set(seed, off), seed.length) : (mutate(seed, buf.subarray(off), r));
    const stream = (i & 1) === 1;
    const na = a.parse(buf, off, off + n, stream, view);
    const nb = b.parse(buf, off, off + n, stream);
    assert.deepEqual(snapshot(a, na), snapshot(b, nb), `message ${i}`);
  }
});

test('isSipStartLine (the TCP heuristic): whole SIP start lines only; HTTP, cut lines and other text are not', () => {
  const yes = ['INVITE sip:bob@example.com SIP/2.0\r\nVia: x', 'SIP/2.0 180 Ringing\r\n', 'SIP/2.0 200\n', 'OPTIONS sip:a@b;transport=tcp SIP/2.0\r\n', 'BYE sips:x SIP/2.0\n'];
  const no = ['OPTIONS * HTTP/1.1\r\n', 'GET / HTTP/1.1\r\n', 'INVITE sip:bob@example.com SIP/2.0', 'SIP/2.0 18 Ringing\r\n', 'SIP/2.0 1800 x\r\n', 'INVITE  SIP/2.0\r\n', 'INVITE sip:a b SIP/2.0\r\n', 'INVITE sip:a SIP/2.1\r\n', 'MESSAGE body text\r\n', 'HTTP/1.1 200 OK\r\n', '\r\nINVITE sip:a SIP/2.0\r\n'];
  for (const s of yes) assert.equal(isSipStartLine(Buffer.from(s), 0, s.length), true, s);
  for (const s of no) assert.equal(isSipStartLine(Buffer.from(s), 0, s.length), false, s);
});

test('uriParts: user and host of sip, sips and tel URIs (as tshark\'s sip.*.user / .host read them)', () => {
  const cases: [string, string | null, string | null][] = [
    ['sip:alice@example.com', 'alice', 'example.com'],
    ['sips:bob@10.0.0.1:5061;transport=tls', 'bob', '10.0.0.1'],
    ['sip:200.57.7.195:55061;user=phone', null, '200.57.7.195'],
    ['sip:+15551234@gw.example.net;user=phone', '+15551234', 'gw.example.net'],
    ['sip:carol@[2001:db8::1]:5060', 'carol', '[2001:db8::1]'],
    ['sip:dave@example.com?subject=x', 'dave', 'example.com'],
    ['tel:+1-555-0100;phone-context=example.com', '+1-555-0100', null],
    ['sip:@example.com', null, 'example.com'],
    ['no-scheme', null, null],
  ];
  const out = new Int32Array(4);
  for (const [uri, user, host] of cases) {
    const b = Buffer.from(`<${uri}>`);
    const f = uriParts(b, 1, uri.length, out);
    assert.equal((f & USER_FOUND) !== 0 ? b.subarray(out[0], out[0] + out[1]).toString() : null, user, `${uri}: user`);
    assert.equal((f & HOST_FOUND) !== 0 ? b.subarray(out[2], out[2] + out[3]).toString() : null, host, `${uri}: host`);
  }
});

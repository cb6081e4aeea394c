// The byte SDP scanner (SdpScanner) against parseSdp, the string parser it
// replaces on the common path: a table of SDP forms, every SDP body in the
// fixture captures, and a million mutations of them. Then the parser's
// registrations (contexts written from bytes, BYE through expireIn) against
// the string path it replaced, entry by entry in real flow registries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DecodedPacket } from '../../../src/decode/packet.js';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { FlowKey, FlowRegistry, type FlowContext } from '../../../src/shm/registry.js';
import { FIXTURES } from '../../../test/helpers/otus-replay.js';
import { mutate, payloadsOf, rng } from '../../../test/helpers/voip-fuzz.js';
import { SipParser } from './index.js';
import { H_CONTENT_TYPE, SipMessage } from './message.js';
import { parseSdp, scannedMedia, SdpScanner, sdpOfBody, type SdpMedia } from './sdp.js';

const sdp = (lines: string[], eol = '\r\n'): string => lines.join(eol) + eol;

/** SDP forms, each with whether the scanner must take it (false: it may decline, parseSdp then decides). */
const TABLE: [string, string, boolean][] = [
  ['offer, session c=', sdp(['v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0', 'm=audio 49170 RTP/AVP 8 0 101', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', 'a=ptime:20']), true],
  ['media c= over session c=', sdp(['v=0', 'c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 10.0.0.2', 'm=video 4002 RTP/AVP 31', 'm=audio 4004 RTP/AVP 18', 'c=IN IP4 10.0.0.3']), true],
  ['c= after the media it belongs to, several c= (last wins)', sdp(['m=audio 4000 RTP/AVP 0', 'c=IN IP4 10.0.0.9', 'c=IN IP4 10.0.0.8/127/2']), true],
  ['a=rtcp with and without an address', sdp(['c=IN IP4 224.2.1.1/127', 'm=audio 49170 RTP/AVP 0', 'a=rtcp:53020 IN IP4 126.16.64.4', 'm=audio 49172 RTP/AVP 0', 'a=rtcp:53022', 'm=audio 49174 RTP/AVP 0', 'a=rtcp:53024 IN IP6 2001:db8::9']), true],
  ['a=rtcp: bad port keeps the address, host name, short forms', sdp(['c=IN IP4 10.1.1.1', 'm=audio 4000 RTP/AVP 0', 'a=rtcp:abc IN IP4 1.2.3.4', 'm=audio 4002 RTP/AVP 0', 'a=rtcp:5000 IN IP4 host.example', 'm=audio 4004 RTP/AVP 0', 'a=rtcp:70000 IN', 'm=audio 4006 RTP/AVP 0', 'a=rtcp:', 'a=rtcp:0 IN IP4 9.9.9.9']), true],
  ['rtcp-mux', sdp(['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 111', 'a=rtpmap:111 opus/48000/2', 'a=rtcp-mux', 'a=rtcp:4001', 'm=audio 4002 RTP/AVP 0', 'a=rtcp-mux-only', 'a= rtcp-mux ']), true],
  ['port counts', sdp(['c=IN IP4 10.0.0.1', 'm=audio 49170/2 RTP/AVP 0', 'a=rtcp:60000', 'm=video 51372/12 RTP/AVP 31', 'm=audio 6000/0 RTP/AVP 8', 'm=audio 6100/ RTP/AVP 8', 'm=audio 65535/2 RTP/AVP 0', 'm=audio 6200/2/3 RTP/AVP 0']), true],
  ['IPv6', sdp(['c=IN IP6 2001:db8::1', 'm=audio 4000 RTP/AVP 0', 'm=audio 4002 RTP/AVP 0', 'c=IN IP6 ::ffff:192.0.2.1', 'm=audio 4004 RTP/AVP 0', 'c=IN IP6 192.0.2.7', 'm=audio 4006 RTP/AVP 0', 'c=IN IP6 fe80::1%eth0']), true],
  ['hold: 0.0.0.0 and ::', sdp(['c=IN IP4 0.0.0.0', 'm=audio 4000 RTP/AVP 0', 'm=audio 4002 RTP/AVP 0', 'c=IN IP6 ::', 'm=audio 4004 RTP/AVP 0', 'c=IN IP4 10.0.0.5']), true],
  ['an empty IP6 address clears the media one, then the session one', sdp(['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 10.0.0.2', 'c=IN IP6 /64', 'c=IN IP6 /1', 'm=audio 4002 RTP/AVP 0']), true],
  ['bad ports and lines', sdp(['c=IN IP4 10.0.0.1', 'm=audio 70000 RTP/AVP 0', 'c=IN IP4 10.0.0.4', 'm=audio 0 RTP/AVP 0', 'm=audio /2 RTP/AVP 0', 'm=audio x RTP/AVP 0', 'm=audio 4000', 'm=', 'm=audio 4002 RTP/AVP 0', 'c=IN IP4', 'c=IN IP5 10.0.0.9', 'c=in IP4 10.0.0.9', 'c=IN IP4 10.0.0', 'c=IN IP4 1.2.3.4.5', 'x', '', 'c']), true],
  ['no c= at all', sdp(['v=0', 'm=audio 4000 RTP/AVP 0', 'm=video 4002 RTP/AVP 31']), true],
  ['loose IPv4 (the registry refuses it)', sdp(['c=IN IP4 999.1.1.1', 'm=audio 4000 RTP/AVP 0', 'm=audio 4002 RTP/AVP 0', 'c=IN IP4 01.2.3.4', 'm=audio 4004 RTP/AVP 0', 'c=IN IP4 00.0.0.0', 'm=audio 4006 RTP/AVP 0', 'c=IN IP4 255.255.255.255']), true],
  ['payload types: rtpmap over static, last rtpmap wins, text match, non-RTP formats', sdp(['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 08 8 0 3 13 34 1 96', 'a=rtpmap:08 G729/8000', 'a=rtpmap:96 opus/48000/2', 'a=rtpmap:96 OPUS/48000', 'a=rtpmap:0', 'a=rtpmap:3 /8000', 'a=rtpmap:x GSM', 'a=rtpmap:13CN', 'm=image 6000 udptl t38', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'm=application 5000 udp wb', 'm=audio 4002 RTP/AVP']), true],
  ['rtpmap before its m=, session a=', sdp(['a=rtpmap:0 NOTUSED/8000', 'a=rtcp-mux', 'c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0']), true],
  ['LF line ends, tabs, stray CR, trailing blanks, no final newline', 'c=IN\tIP4  10.0.0.1 \nm=audio\t4000 RTP/AVP 0 8\r\r\na=rtpmap:8\tPCMA/8000\na=\trtcp:4999 \x0b\nm=audio 4002 RTP/AVP 18', true],
  ['long payload-type lists (ptmap past 90 bytes)', sdp(['c=IN IP4 10.0.0.1', `m=video 5000 RTP/AVP ${Array.from({ length: 30 }, (_, i) => 96 + i).join(' ')}`, ...Array.from({ length: 30 }, (_, i) => `a=rtpmap:${96 + i} ${i % 2 ? 'rtx' : 'H264'}/90000`), 'm=audioaudioaudioaudio 5002 RTP/AVP ' + 'x'.repeat(120)]), true],
  ['UTF-8 outside the lines that count', sdp(['v=0', 'o=jörg 1 1 IN IP4 10.0.0.1', 's=Café ☕', 'c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'a=fmtp:0 ünused', 'i=ä']), true],
  // Forms the scanner leaves to parseSdp: latin1 NBSP is whitespace to it, Number() reads 0x1f and 1e3.
  ['NBSP as a separator', sdp(['c=IN\u00a0IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'a=\u00a0rtcp-mux']), false],
  ['Number() forms', sdp(['c=IN IP4 10.0.0.1', 'm=audio 0x1f40 RTP/AVP 0', 'm=audio 4000/1e1 RTP/AVP +8 0x8', 'a=rtcp:4e3']), false],
  ['non-ASCII names', sdp(['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 96', 'a=rtpmap:96 ópus/48000']), false],
];

const scanner = new SdpScanner();
const work = new Uint8Array(1 << 16);

/** The scanner over `bytes` (at an odd offset, through a DataView and without): the endpoints, or null when it declines. Both ways must agree. */
function scan(bytes: Uint8Array): SdpMedia[] | null {
  const off = 3;
  work.fill(0x0a, 0, bytes.length + 8); // stray newlines around: the scan must stay inside [off, end)
  work.set(bytes, off);
  const end = off + bytes.length;
  const a = scanner.scan(work, new DataView(work.buffer), off, end);
  const viaView = a < 0 ? null : scannedMedia(scanner);
  const b = scanner.scan(work, null, off, end);
  const viaBytes = b < 0 ? null : scannedMedia(scanner);
  assert.deepEqual(viaView, viaBytes, 'word and byte line search differ');
  return viaBytes;
}

/** The scanner agrees with parseSdp on the latin1 text of `bytes` (or declines). Returns whether it took it. */
function agrees(bytes: Uint8Array, what: string): boolean {
  const got = scan(bytes);
  if (got === null) return false;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  assert.deepEqual(got, parseSdp(text), `${what}: ${JSON.stringify(text)}`);
  return true;
}

const latin1 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

test('the byte scanner gives parseSdp’s endpoints on a range of SDP forms', () => {
  for (const [what, text, taken] of TABLE) {
    const ok = agrees(latin1(text), what);
    if (taken) assert.ok(ok, `${what}: declined`);
    else assert.ok(!ok, `${what}: taken (expected to be left to parseSdp)`);
  }
  // Spot checks of the reference itself, so the table means what it says.
  const [pc] = parseSdp(TABLE[6][1]);
  assert.deepEqual([pc.port, pc.rtcpPort], [49170, 60000]);
  assert.equal(parseSdp(TABLE[6][1])[1].rtcpPort, 49173, 'a=rtcp applies to the first port of a count only');
  assert.deepEqual(parseSdp(TABLE[8][1]).map((m) => m.port), [4004]);
  assert.equal(parseSdp(TABLE[5][1])[0].rtcpPort, -1);
});

/** SDP bodies in the fixture captures: application/sdp bodies of SIP messages, multipart parts, and any payload from "v=0" on (TCP segments). */
function fixtureBodies(): { what: string; bytes: Uint8Array }[] {
  const out: { what: string; bytes: Uint8Array }[] = [];
  const m = new SipMessage();
  const files = readdirSync(FIXTURES).filter((f) => /\.pcap(ng)?$/.test(f));
  for (const f of files) {
    let payloads: Uint8Array[];
    try {
      payloads = payloadsOf([join(FIXTURES, f)], () => true);
    } catch {
      continue; // captures made to fail the reader
    }
    payloads.forEach((p, i) => {
      if (m.parse(p, 0, p.length, false) > 0 && m.bodyLen > 0) {
        const ct = m.header(H_CONTENT_TYPE);
        if (ct >= 0) {
          const body = m.bodyString();
          const part = sdpOfBody(m.valueString(ct), body);
          if (part !== null) out.push({ what: `${f} #${i}${part === body ? '' : ' (multipart)'}`, bytes: latin1(part) });
        }
      }
      const v = Buffer.from(p).indexOf('v=0');
      if (v >= 0) out.push({ what: `${f} #${i} from v=0`, bytes: p.slice(v) });
    });
  }
  return out;
}

const FIXTURE_BODIES = fixtureBodies();

test('…and on every SDP body in the fixture captures', () => {
  let taken = 0;
  for (const { what, bytes } of FIXTURE_BODIES) if (agrees(bytes, what)) taken++;
  assert.ok(FIXTURE_BODIES.length >= 10, `${FIXTURE_BODIES.length} bodies`);
  assert.equal(taken, FIXTURE_BODIES.length, 'every fixture body on the byte path');
  assert.ok(FIXTURE_BODIES.some(({ bytes }) => parseSdp(Buffer.from(bytes).toString('latin1')).length > 0));
});

test('…and on a million mutations of them (bytes over 0x7f, cut lines, CR/LF/space/digits inserted)', () => {
  const seeds = [...TABLE.map(([, t]) => latin1(t)), ...FIXTURE_BODIES.map((b) => b.bytes)];
  const r = rng(0x5dd);
  const buf = new Uint8Array(Math.max(...seeds.map((s) => s.length)) * 2 + 64);
  let taken = 0;
  const runs = 1_000_000;
  for (let i = 0; i < runs; i++) {
    const n = mutate(seeds[i % seeds.length], buf, r);
    if (agrees(buf.slice(0, n), `mutation ${i}`)) taken++;
  }
  console.log(`# sdp scanner fuzz: ${taken} of ${runs} taken, the rest left to parseSdp`);
  assert.ok(taken > runs / 2, `${taken} taken`);
});

// ---- registrations: the SIP parser against the string path it replaced ----

const CALL = 'a84b4c76e66710@pc33.example.com';
const TTL = 60;
const GRACE = 2;

function invite(body: Uint8Array, callId = CALL, contentType = 'application/sdp'): Uint8Array {
  const head = Buffer.from(
    `INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n` +
      `Call-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`,
    'utf8',
  );
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function bye(callId = CALL): Uint8Array {
  return new Uint8Array(Buffer.from(`BYE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK777\r\nCall-ID: ${callId}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`));
}

/** Hands one UDP datagram to the parser, as the pipeline does (payload at an offset, with its DataView). */
function feed(sip: SipParser, msg: Uint8Array): void {
  const p = new DecodedPacket();
  const buf = new Uint8Array(msg.length + 50);
  buf.set(msg, 42);
  p.ipVersion = 4;
  p.proto = 17;
  p.src4 = 0xc000020a;
  p.dst4 = 0xc6336414;
  p.sport = 5060;
  p.dport = 5060;
  p.payloadBuf = buf;
  p.payloadView = new DataView(buf.buffer);
  p.payloadOff = 42;
  p.payloadLen = msg.length;
  assert.ok(sip.handle(p, new OutputRecord(), true, 6));
}

function truncUtf8(s: string, max: number): string {
  while (Buffer.byteLength(s) > max) s = s.slice(0, -1);
  return s;
}

/** The string path the parser replaced (parseSdp, FlowContext strings, register per endpoint), for comparison. */
function referenceRegister(flows: FlowRegistry, callId: string, media: SdpMedia[]): { ok: number; failed: number; keys: [string, number][] } {
  const key = new FlowKey();
  const r = { ok: 0, failed: 0, keys: [] as [string, number][] };
  for (const md of media) {
    let ptmap = md.ptmap;
    while (Buffer.byteLength(ptmap) > 77) ptmap = ptmap.slice(0, ptmap.lastIndexOf(' '));
    // The test's messages are INVITEs: the caller's SDP.
    const ctx: FlowContext = { callId: truncUtf8(callId, 128), codec: truncUtf8(md.codec, 16), labels: { media: md.media.slice(0, 16), pt: ptmap, side: 'caller' } };
    const eps: [string, number][] = [[md.address, md.port]];
    if (md.rtcpPort > 0) eps.push([md.rtcpAddress, md.rtcpPort]);
    for (const [address, port] of eps) {
      r.keys.push([address, port]);
      try {
        key.endpoint(address, port);
        if (flows.register(key, ctx, TTL * 1000) < 0) r.failed++;
        else r.ok++;
      } catch {
        r.failed++;
      }
    }
  }
  return r;
}

let seq = 0;
function registries(): [FlowRegistry, FlowRegistry] {
  const n = `sdpreg${process.pid}-${seq++}`;
  return [FlowRegistry.create(`${n}a`, { capacity: 4096 }), FlowRegistry.create(`${n}b`, { capacity: 4096 })];
}

/** The context of an endpoint in a registry, null when absent or not a parseable address. */
function contextAt(flows: FlowRegistry, address: string, port: number): FlowContext | null {
  let k: FlowKey;
  try {
    k = new FlowKey().endpoint(address, port);
  } catch {
    return null;
  }
  const slot = flows.lookup(k);
  return slot < 0 ? null : flows.context(slot);
}

test('SDP bodies register the same entries as the string path, and BYE leaves them a grace', () => {
  const bodies: { what: string; bytes: Uint8Array; callId?: string; contentType?: string }[] = [
    ...TABLE.map(([what, text]) => ({ what, bytes: latin1(text) })),
    ...FIXTURE_BODIES.filter((b) => !b.what.includes('from v=0')),
    { what: 'non-ASCII Call-ID', bytes: latin1(TABLE[0][1]), callId: 'ünïcode-call@example' },
    { what: 'Call-ID over 128 bytes', bytes: latin1(TABLE[0][1]), callId: 'x'.repeat(140) + '@example' },
    { what: 'upper-case Content-Type', bytes: latin1(TABLE[0][1]), contentType: 'Application/SDP' },
  ];
  // A multipart body (SIP-I): the string path, through the parser.
  const boundary = 'unique-boundary-1';
  bodies.push({
    what: 'multipart',
    bytes: latin1(`--${boundary}\r\nContent-Type: application/sdp\r\n\r\n${TABLE[3][1]}\r\n--${boundary}\r\nContent-Type: application/ISUP; version=nxv3\r\n\r\nxx\r\n--${boundary}--\r\n`),
    contentType: `multipart/mixed; boundary=${boundary}`,
  });
  for (const b of bodies) {
    const [mine, ref] = registries();
    try {
      const sip = new SipParser({ ports: [5060], heuristic: true, track_media: true, media_ttl: TTL, bye_grace: GRACE, max_message: 65536 }, mine);
      const callId = b.callId ?? CALL;
      feed(sip, invite(b.bytes, callId, b.contentType));
      const text = Buffer.from(b.bytes).toString('latin1');
      const media = parseSdp(b.contentType?.startsWith('multipart') ? sdpOfBody(b.contentType, text)! : text);
      const r = referenceRegister(ref, callId, media);
      const what = `${b.what}: ${JSON.stringify(text.slice(0, 200))}`;
      assert.equal(sip.stats.endpointsRegistered, r.ok, `${what}: registered`);
      assert.equal(sip.stats.registerFailed, r.failed, `${what}: failed`);
      assert.equal(mine.stats().live, ref.stats().live, `${what}: live entries`);
      for (const [address, port] of r.keys) assert.deepEqual(contextAt(mine, address, port), contextAt(ref, address, port), `${what}: ${address} ${port}`);
      // BYE: the same entries, contexts unchanged, live only the grace.
      const t0 = Date.now();
      feed(sip, bye(callId));
      assert.equal(sip.stats.callsEnded, media.length > 0 ? 1 : 0, what);
      assert.equal(sip.callsTracked, 0);
      mine.setNow(t0 + GRACE * 1000 - 300);
      for (const [address, port] of r.keys) assert.deepEqual(contextAt(mine, address, port), contextAt(ref, address, port), `${what}: after BYE ${address} ${port}`);
      mine.setNow(Date.now() + GRACE * 1000 + 300);
      for (const [address, port] of r.keys) assert.equal(contextAt(mine, address, port), null, `${what}: gone after the grace ${address} ${port}`);
    } finally {
      mine.close();
      ref.close();
    }
  }
});

test('a re-INVITE adds endpoints to the call; BYE shortens every one, once each, and only live ones', () => {
  const [flows, other] = registries();
  other.close();
  try {
    const sip = new SipParser({ ports: [5060], heuristic: true, track_media: true, media_ttl: TTL, bye_grace: GRACE, max_message: 65536 }, flows);
    feed(sip, invite(latin1(sdp(['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0']))));
    feed(sip, invite(latin1(sdp(['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 8', 'm=video 4002 RTP/AVP 31', 'a=rtcp-mux']))));
    assert.equal(sip.stats.endpointsRegistered, 5);
    assert.equal(sip.callsTracked, 1);
    const updates = flows.stats().updates;
    // An entry removed meanwhile is not brought back by the BYE.
    assert.ok(flows.unregister(new FlowKey().endpoint('10.0.0.1', 4001)));
    feed(sip, bye());
    assert.equal(flows.stats().updates - updates, 2, 'expireIn: the two live endpoints (4000, 4002)');
    assert.equal(contextAt(flows, '10.0.0.1', 4001), null);
    assert.deepEqual(contextAt(flows, '10.0.0.1', 4000), { callId: CALL, codec: 'PCMA', labels: { media: 'audio', pt: '8 PCMA', side: 'caller' } }, 'the latest context stays');
    flows.setNow(Date.now() + GRACE * 1000 + 300);
    assert.equal(contextAt(flows, '10.0.0.1', 4000), null);
    assert.equal(contextAt(flows, '10.0.0.1', 4002), null);
    feed(sip, bye());
    assert.equal(sip.stats.callsEnded, 1, 'a second BYE finds no call');
  } finally {
    flows.close();
  }
});

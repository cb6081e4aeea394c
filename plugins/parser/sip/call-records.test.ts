// sip.call records (dialogs.ts) against what tshark's SIP fields say of every
// dialog: start, ringing, answer and end times, post-dial delay, setup time,
// duration, final status, who ended it, retransmissions, re-INVITEs. Over a
// capture written here (test/helpers/sip-dialogs.ts: answered, callee's BYE,
// CANCEL, 486, 302, re-INVITE, retransmitted INVITE and 200, no BYE (times
// out), 407 then credentials, INFO digits) and the fixture captures with
// INVITEs (UDP and SIP over TCP in 2-5 segments). With 2 capture processes
// the records are the same as with 1; JSON and protobuf agree.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { writePcap } from '../../../test/helpers/live.js';
import { FIXTURES, OTUS, replay, ROOT, type Rec, tsharkFields } from '../../../test/helpers/otus-replay.js';
import { dialogCapture } from '../../../test/helpers/sip-dialogs.js';
import { udpFrame } from '../../../test/helpers/udp-frames.js';
import { parseTask } from '../../../src/config/task.js';
import { spawnSync } from 'node:child_process';

const dir = mkdtempSync(join(tmpdir(), 'otus-calls-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const generated = join(dir, 'dialogs.pcap');
const { frames } = dialogCapture();
writePcap(generated, frames.map((f) => f.frame), (i) => frames[i].us);

const TIMEOUT_S = 60;
const task = (extra = ''): string => `task:
  id: calls
  parsers:
    - plugin: sip
      config: {ports: [5060, 5080], call_timeout: ${TIMEOUT_S}${extra}}
  sip: {calls: true}
  unmatched_policy: drop
`;

const FIXTURE_FILES = [
  'otus--sip-tcp-segmented.pcap', // two sipp calls over TCP (port 5080), every message in 2-5 segments
  'PcapPlusPlus--sip_non_default_port.pcap',
  'PcapPlusPlus--sip_reqs.pcap',
  'suricata-verify--sip-body-frames.pcap',
  'suricata-verify--sip-body-large.pcap',
  'suricata-verify--sip-compact-form.pcap',
  'suricata-verify--sip-header-multi-value.pcap',
  'suricata-verify--sip-sdp.pcap',
  'zeek--sip-invalid-content-length.pcap',
].map((f) => join(FIXTURES, f));

interface Msg {
  t: number; // capture time of the message's first byte, seconds (float)
  ns: bigint; // the same, exact
  callId: string;
  method: string;
  status: number;
  cseqMethod: string;
  cseq: number;
  fromTag: string;
  toTag: string;
  resend: boolean;
}

/** Every SIP message tshark sees in a file; over TCP at the time of its first segment. */
function tsharkMessages(file: string): Msg[] {
  const times = new Map<string, string>();
  for (const [n, t] of tsharkFields(file, '', ['frame.number', 'frame.time_epoch'])) times.set(n, t);
  const F = ['frame.number', 'tcp.segment', 'sip.Call-ID', 'sip.Method', 'sip.Status-Code', 'sip.CSeq.method', 'sip.CSeq.seq', 'sip.from.tag', 'sip.to.tag', 'sip.resend'];
  return tsharkFields(file, 'sip', F).map((c) => {
    const segs = c[1] === '' ? [c[0]] : c[1].split(',');
    const t = times.get(String(Math.min(...segs.map(Number))))!;
    return {
      t: Number(t),
      ns: epochNs(t),
      callId: c[2],
      method: c[3],
      status: Number(c[4] || 0),
      cseqMethod: c[5],
      cseq: Number(c[6]),
      fromTag: c[7],
      toTag: c[8],
      resend: c[9] === '1',
    };
  });
}

interface Want {
  start: bigint;
  ringing: bigint | null;
  answer: bigint | null;
  end: bigint | null;
  pdd: number | null;
  setup: number | null;
  duration: number | null;
  final: number | null;
  endedBy: string | null;
  endMethod: string | null;
  retransmissions: number;
  reinvites: number;
  state: string;
}

/** tshark's frame.time_epoch as nanoseconds. */
function epochNs(t: string): bigint {
  const [s, f = ''] = t.split('.');
  return BigInt(s) * 1_000_000_000n + BigInt((f + '000000000').slice(0, 9));
}

const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;

/**
 * What a call record must say, from tshark's fields alone and the definitions
 * in docs/records.md: a call is the Call-ID of an INVITE without a To tag; its
 * INVITE's responses are those with CSeq method INVITE and the CSeq number of
 * an INVITE sent without a To tag (a 401/407 answer's resend with credentials
 * has a new one); the end is the first BYE, else the CANCEL (ended by the
 * caller), else the final error response (by the callee); no end and quiet
 * for the timeout: ended by timeout at its last message.
 */
function expected(msgs: Msg[], lastNs: bigint, timeoutNs: bigint): Map<string, Want> {
  const out = new Map<string, Want>();
  const ids = [...new Set(msgs.filter((m) => m.method === 'INVITE' && m.toTag === '').map((m) => m.callId))];
  for (const id of ids) {
    const all = msgs.filter((m) => m.callId === id);
    const first = all.findIndex((m) => m.method === 'INVITE' && m.toTag === '');
    const mine = all.slice(first);
    const fresh = mine.filter((m) => !m.resend);
    const callerTag = mine[0].fromTag;
    const initial = new Set(fresh.filter((m) => m.method === 'INVITE' && m.toTag === '').map((m) => m.cseq));
    const resp = fresh.filter((m) => m.status > 0 && m.cseqMethod === 'INVITE' && initial.has(m.cseq));
    const ring = resp.find((m) => m.status === 180 || m.status === 183);
    const pddAt = resp.find((m) => m.status !== 100 && m.status !== 401 && m.status !== 407);
    const finalMsg = resp.find((m) => m.status >= 200 && m.status !== 401 && m.status !== 407);
    const answered = finalMsg !== undefined && finalMsg.status < 300 ? finalMsg : undefined;
    const bye = fresh.find((m) => m.method === 'BYE');
    const cancel = fresh.find((m) => m.method === 'CANCEL');
    const start = mine[0].ns;
    const w: Want = {
      start,
      ringing: ring?.ns ?? null,
      answer: answered?.ns ?? null,
      end: null,
      pdd: pddAt ? ms(start, pddAt.ns) : null,
      setup: answered ? ms(start, answered.ns) : null,
      duration: null,
      final: finalMsg?.status ?? null,
      endedBy: null,
      endMethod: null,
      retransmissions: mine.filter((m) => m.resend).length,
      reinvites: fresh.filter((m) => m.method === 'INVITE' && !initial.has(m.cseq)).length,
      state: answered ? 'answered' : ring ? 'ringing' : 'calling',
    };
    const last = mine[mine.length - 1].ns;
    if (bye && (answered || !finalMsg)) {
      w.end = bye.ns;
      w.endedBy = bye.fromTag === callerTag ? 'caller' : 'callee';
      w.endMethod = 'BYE';
    } else if (cancel && !answered) {
      w.end = cancel.ns;
      w.endedBy = 'caller';
      w.endMethod = 'CANCEL';
    } else if (finalMsg && !answered) {
      w.end = finalMsg.ns;
      w.endedBy = 'callee';
    } else if (lastNs - last >= timeoutNs) {
      w.end = last;
      w.endedBy = 'timeout';
    }
    if (w.end !== null) w.state = 'ended';
    if (answered && w.end !== null) w.duration = ms(answered.ns, w.end);
    out.set(id, w);
  }
  return out;
}

function isoNs(s: string | null): bigint | null {
  if (s === null) return null;
  const m = /^(.*)\.(\d+)Z$/.exec(s)!;
  return BigInt(Date.parse(`${m[1]}Z`) / 1000) * 1_000_000_000n + BigInt((m[2] + '000000000').slice(0, 9));
}

function checkCalls(file: string, records: Rec[]): number {
  const msgs = tsharkMessages(file);
  const lastNs = msgs.reduce((a, m) => (m.ns > a ? m.ns : a), 0n);
  const want = expected(msgs, lastNs, BigInt(TIMEOUT_S) * 1_000_000_000n);
  const calls = records.filter((r) => r.protocol === 'sip.call');
  assert.deepEqual(calls.map((r) => r.payload.call_id).sort(), [...want.keys()].sort(), `${file}: one record per call`);
  for (const r of calls) {
    const p = r.payload;
    const w = want.get(p.call_id)!;
    const what = `${file}: ${p.call_id}`;
    assert.equal(r.labels['call-id'], p.call_id);
    assert.equal(isoNs(p.start), w.start, `${what}: start`);
    assert.equal(isoNs(p.ringing), w.ringing, `${what}: ringing`);
    assert.equal(isoNs(p.answer), w.answer, `${what}: answer`);
    assert.equal(isoNs(p.end), w.end, `${what}: end`);
    // Milliseconds from nanosecond differences: equal to a nanosecond.
    for (const [k, v] of [['post_dial_delay_ms', w.pdd], ['setup_time_ms', w.setup], ['duration_ms', w.duration]] as const) {
      if (v === null) assert.equal(p[k], null, `${what}: ${k}`);
      else assert.ok(Math.abs(p[k] - v) < 1e-6, `${what}: ${k} ${p[k]} vs ${v}`);
    }
    assert.equal(p.final_status, w.final, `${what}: final status`);
    assert.equal(p.ended_by, w.endedBy, `${what}: ended by`);
    assert.equal(p.end_method, w.endMethod, `${what}: end method`);
    assert.equal(p.state, w.state, `${what}: state`);
    assert.equal(p.retransmissions, w.retransmissions, `${what}: retransmissions`);
    assert.equal(p.reinvites, w.reinvites, `${what}: re-INVITEs`);
  }
  return calls.length;
}

test('generated dialogs: every call record equals what tshark fields say of the dialog', () => {
  const { records, stats } = replay(task(), [generated]);
  assert.equal(checkCalls(generated, records), 10);
  const by = new Map(records.filter((r) => r.protocol === 'sip.call').map((r) => [r.payload.call_id as string, r.payload]));
  // The scenarios as written (a cross-check of the tshark derivation).
  const p = (name: string): any => [...by.entries()].find(([id]) => id.startsWith(`${name}-`))![1];
  assert.equal(p('answered').ended_by, 'caller');
  assert.equal(p('callee-bye').ended_by, 'callee');
  assert.deepEqual([p('cancelled').final_status, p('cancelled').end_method, p('cancelled').ended_by], [487, 'CANCEL', 'caller']);
  assert.deepEqual([p('busy').final_status, p('busy').ended_by], [486, 'callee']);
  assert.equal(p('redirected').final_status, 302);
  assert.equal(p('reinvite').reinvites, 1);
  assert.equal(p('retransmitted').retransmissions, 2);
  assert.deepEqual([p('no-bye').ended_by, p('no-bye').state], ['timeout', 'ended']);
  assert.deepEqual([p('challenged').final_status, p('challenged').reinvites], [200, 0]);
  // Who, and the media negotiated.
  assert.deepEqual([p('answered').from_user, p('answered').from_domain, p('answered').to_user, p('answered').to_domain, p('answered').ruri_user], ['1001', '10.30.1.1', '2001', 'example.net', '2001']);
  assert.equal(p('callee-bye').codec, 'PCMA');
  assert.deepEqual(p('callee-bye').media, [
    { side: 'caller', type: 'audio', address: '10.30.2.1', port: 20004, codecs: ['PCMA', 'PCMU', 'telephone-event'] },
    { side: 'callee', type: 'audio', address: '10.40.2.1', port: 30004, codecs: ['PCMA', 'telephone-event'] },
  ]);
  assert.equal(p('reinvite').codec, 'PCMU');
  assert.equal(stats.parsers.sip.counters.calls.records, 10);
});

test('SIP INFO digits (application/dtmf-relay) on the call record, at their INFO times', () => {
  const { records } = replay(task(), [generated]);
  const call = records.find((r) => r.protocol === 'sip.call' && r.payload.call_id.startsWith('answered-'))!;
  // The INFO requests tshark finds, their times and bodies.
  const infos = tsharkFields(generated, 'sip.Method == "INFO"', ['frame.time_epoch', 'udp.payload']).map(([t, hex]) => [t, Buffer.from(hex.replace(/:/g, ''), 'hex').toString('latin1').split('\r\n\r\n')[1]]);
  assert.equal(infos.length, 2);
  assert.deepEqual(
    call.payload.dtmf.map((d: any) => [d.digit, d.duration_ms, isoNs(d.ts)]),
    infos.map(([t, body]) => [/Signal=(\S)/.exec(body)![1], Number(/Duration=(\d+)/.exec(body)![1]), epochNs(t)]),
  );
});

test('sip.retransmission marks exactly the messages tshark marks sip.resend', () => {
  const { records } = replay(task(), [generated]);
  const sip = records.filter((r) => r.protocol === 'sip');
  const msgs = tsharkMessages(generated);
  assert.equal(sip.length, msgs.length);
  const flagged = (r: Rec): string => `${r.labels['sip.call-id']} ${r.labels['sip.method'] ?? r.labels['sip.status']} ${r.ts}`;
  const want = msgs.filter((m) => m.resend).map((m) => `${m.callId} ${m.method || m.status}`);
  assert.deepEqual(sip.filter((r) => r.labels['sip.retransmission'] === 'true').map((r) => flagged(r).split(' ').slice(0, 2).join(' ')), want);
  assert.equal(want.length, 2);
  assert.ok(sip.every((r) => r.labels['sip.retransmission'] === undefined || r.labels['sip.retransmission'] === 'true'));
});

test('fixture captures: every call record equals what tshark fields say (SIP over UDP, and over TCP in segments)', () => {
  let n = 0;
  for (const file of FIXTURE_FILES) n += checkCalls(file, replay(task(), [file]).records);
  assert.ok(n >= 10, `${n} calls`);
});

test('2 capture processes make the same call records as 1', () => {
  const files = [generated];
  const one = replay(task(), files, 1).records.filter((r) => r.protocol === 'sip.call');
  const two = replay(task(), files, 2).records.filter((r) => r.protocol === 'sip.call');
  const key = (r: Rec): string => r.payload.call_id;
  const sort = (rs: Rec[]): Rec[] => [...rs].sort((a, b) => (key(a) < key(b) ? -1 : 1));
  assert.equal(two.length, one.length);
  assert.deepEqual(sort(two), sort(one));
});

test('call_updates: a record at each state change, then the end', () => {
  const { records } = replay(task(', call_updates: true'), [generated]);
  const states = (prefix: string): string[] => records.filter((r) => r.protocol === 'sip.call' && r.payload.call_id.startsWith(prefix)).map((r) => r.payload.state);
  assert.deepEqual(states('answered-'), ['calling', 'ringing', 'answered', 'ended']);
  assert.deepEqual(states('busy-'), ['calling', 'ended']);
  assert.deepEqual(states('callee-bye-'), ['calling', 'ringing', 'answered', 'ended']);
});

test('JSON and protobuf call records agree (otus.sip.v1.SipCall)', () => {
  const out = join(dir, 'calls.pb');
  const t = task().replace('  unmatched_policy: drop', `  reporter: {type: file, config: {path: ${JSON.stringify(out)}, format: protobuf}}\n  unmatched_policy: drop`);
  const taskFile = join(dir, 'pb.yml');
  writeFileSync(taskFile, t);
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', taskFile, '--workers', '1', generated], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const root = protobuf.loadSync([join(ROOT, 'proto/otus.proto'), join(ROOT, 'plugins/parser/sip/sip.proto')]);
  const Record = root.lookupType('otus.v1.Record');
  const SipCall = root.lookupType('otus.sip.v1.SipCall');
  const b = readFileSync(out);
  const pb: any[] = [];
  for (let o = 0; o < b.length; ) {
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const x = b[o++];
      len += (x & 127) * 2 ** shift;
      if (x < 128) break;
    }
    const rec = Record.toObject(Record.decode(b.subarray(o, o + len)), { longs: Number, defaults: false }) as any;
    o += len;
    if (rec.protocol === 'sip.call') pb.push({ labels: rec.labels, p: SipCall.toObject(SipCall.decode(rec.payload), { longs: Number, defaults: true }) });
  }
  const json = replay(task(), [generated]).records.filter((x) => x.protocol === 'sip.call');
  assert.equal(pb.length, json.length);
  const t2 = (x: any): bigint | null => (x ? BigInt(x.sec) * 1_000_000_000n + BigInt(x.nsec ?? 0) : null);
  for (let i = 0; i < json.length; i++) {
    const j = json[i].payload;
    const p = pb[i].p;
    assert.deepEqual(pb[i].labels, json[i].labels);
    assert.equal(p.callId, j.call_id);
    assert.equal(p.state, j.state);
    for (const [a, k] of [['fromUser', 'from_user'], ['fromDomain', 'from_domain'], ['toUser', 'to_user'], ['toDomain', 'to_domain'], ['ruriUser', 'ruri_user'], ['finalReason', 'final_reason'], ['endedBy', 'ended_by'], ['endMethod', 'end_method'], ['codec', 'codec']]) assert.equal(p[a] || null, j[k], `${j.call_id} ${k}`);
    for (const [a, k] of [['start', 'start'], ['ringing', 'ringing'], ['answer', 'answer'], ['end', 'end']]) assert.equal(t2(p[a]), isoNs(j[k]), `${j.call_id} ${k}`);
    for (const [a, k] of [['postDialDelayMs', 'post_dial_delay_ms'], ['setupTimeMs', 'setup_time_ms'], ['durationMs', 'duration_ms']]) assert.equal(p[a] ?? null, j[k], `${j.call_id} ${k}`);
    assert.deepEqual([p.finalStatus || null, p.messages, p.retransmissions, p.reinvites], [j.final_status, j.messages, j.retransmissions, j.reinvites]);
    assert.deepEqual(p.media.map((m: any) => ({ side: m.side, type: m.type, address: m.address, port: m.port, codecs: m.codecs })), j.media);
    assert.deepEqual(p.dtmf.map((d: any) => [d.digit, t2(d.ts), d.durationMs ?? null]), j.dtmf.map((d: any) => [d.digit, isoNs(d.ts), d.duration_ms]));
  }
});

test('task key sip.calls: turns the sip parser\'s calls on; coded errors without a sip parser or against its own setting', () => {
  const spec = parseTask('task:\n  id: t\n  parsers: [{plugin: sip}, {plugin: rtp}]\n  sip: {calls: true}\n', 't.yml');
  assert.equal(spec.parsers[0].config.calls, true);
  assert.equal(parseTask('task:\n  id: t\n  parsers: [{plugin: sip}]\n', 't.yml').parsers[0].config.calls, undefined);
  assert.throws(() => parseTask('task:\n  id: t\n  parsers: [{plugin: rtp}]\n  sip: {calls: true}\n', 't.yml'), (e: any) => e.code === 'OTUS_ERR_TASK' && /t\.yml:4: task\.sip\.calls: call records need the sip parser in task\.parsers/.test(e.message));
  assert.throws(
    () => parseTask('task:\n  id: t\n  parsers: [{plugin: sip, config: {calls: false}}]\n  sip: {calls: true}\n', 't.yml'),
    (e: any) => e.code === 'OTUS_ERR_TASK' && /task\.sip\.calls: is true, but task\.parsers\[0\]\.config\.calls is false/.test(e.message),
  );
  // Off by default: no call records.
  const { records } = replay(task().replace('  sip: {calls: true}\n', ''), [generated]);
  assert.equal(records.filter((r) => r.protocol === 'sip.call').length, 0);
});

test('sip.retransmission: within 32 s of the first copy, same direction only; calls off too', () => {
  const invite = (src: string, dst: string): Uint8Array =>
    udpFrame(src, dst, 5060, 5060, 'INVITE sip:b@example.net SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@example.net>;tag=1\r\nTo: <sip:b@example.net>\r\nCall-ID: r@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n');
  // 0 s; 31 s (resent); the reverse direction at 31.5 s (not a resend of the first); 40 s (resent, 40 s after the first: no);
  // then 41 s (the 40 s copy was remembered: resent).
  const seq: [number, Uint8Array][] = [[0, invite('10.0.0.1', '10.0.0.2')], [31, invite('10.0.0.1', '10.0.0.2')], [31.5, invite('10.0.0.2', '10.0.0.1')], [40, invite('10.0.0.1', '10.0.0.2')], [41, invite('10.0.0.1', '10.0.0.2')]];
  const file = join(dir, 'resend.pcap');
  writePcap(file, seq.map(([, f]) => f), (i) => seq[i][0] * 1e6);
  const { records, stats } = replay(task().replace('  sip: {calls: true}\n', ''), [file]);
  assert.deepEqual(records.map((r) => r.labels['sip.retransmission'] ?? '-'), ['-', 'true', '-', '-', 'true']);
  assert.equal(stats.parsers.sip.counters.retransmissions, 2);
  const resend = tsharkMessages(file).map((m) => m.resend);
  assert.equal(resend[1], true, 'tshark agrees on the resend within the window');
});

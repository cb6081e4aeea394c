// The pcap reporter (docs/reporters.md, "pcap"), checked with tshark: the
// output holds the frames of exactly the records the task kept (a processor
// drops the INVITEs), byte for byte (frame MD5s, in order), with the
// capture's link type and nanosecond timestamps when the capture had them.
// Per call: each call's file holds exactly the frames tshark finds for it in
// the input (its SIP by sip.Call-ID, its RTP by the ports its SDP gave),
// frames without a call-id go to the main file; a frame of a call after its
// BYE plus call_grace, or after call_idle without a frame, opens a new file
// (the first was completed at the call's end), with four descriptors for
// twenty calls (least recently used closed and reopened, counted). With
// sip.call records a call ends at its record: a 407 that the SIP labels'
// rule takes for the end does not split the call's file; sip.call and
// rtp.stats records (no frame) are counted as delivered and as
// summary_records, not as errors. A task without `raw: true` is refused
// with a coded error.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { rtpCallsCapture } from '../../bench/captures.js';
import { writePcap } from '../helpers/live.js';
import { FIXTURES, OTUS, replay, type Rec } from '../helpers/otus-replay.js';
import { rtpPacket, udpFrame } from '../helpers/udp-frames.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-pcap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Frame MD5s of a capture, in order, as tshark computes them (only frames matching `filter`, when given). */
function md5s(file: string, filter?: string): string[] {
  const args = ['-r', file, '-o', 'frame.generate_md5_hash:TRUE', '-T', 'fields', '-e', 'frame.md5_hash', ...(filter ? ['-Y', filter] : [])];
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 << 20 })
    .split('\n')
    .filter(Boolean);
}

function tshark(file: string, fields: string[], filter?: string, md5 = false): string[] {
  const args = ['-r', file, ...(md5 ? ['-o', 'frame.generate_md5_hash:TRUE'] : []), '-T', 'fields', ...fields.flatMap((f) => ['-e', f]), ...(filter ? ['-Y', filter] : [])];
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 << 20 })
    .split('\n')
    .filter(Boolean);
}

let n = 0;
function run(task: string, captures: string[]): { status: number; stderr: string; stats: any } {
  const t = join(dir, `task${n++}.yml`);
  writeFileSync(t, task);
  const st = join(dir, `stats${n}.json`);
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', t, '--stats-json', st, ...captures], { encoding: 'utf8' });
  return { status: r.status ?? -1, stderr: r.stderr, stats: r.status === 0 ? JSON.parse(readFileSync(st, 'utf8')) : null };
}

describe('pcap reporter', () => {
  it('the frames of the records kept, byte for byte, as tshark reads them; link type and nanoseconds from the capture', () => {
    const cap = join(dir, 'calls.pcap');
    rtpCallsCapture(cap, 50, 2000);
    const ns = join(dir, 'calls-ns.pcap');
    execFileSync('editcap', ['-F', 'nsecpcap', cap, ns]);
    for (const [input, magic] of [
      [cap, 'a1b2c3d4'],
      [ns, 'a1b23c4d'],
    ] as const) {
      const out = join(dir, `kept-${n}.pcap`);
      const r = run(
        `task:\n  id: kept\n  raw: true\n  parsers: [{plugin: sip}, {plugin: rtp}]\n  processors:\n    - plugin: filter\n      config: {rules: [{label: sip.method, values: [INVITE], action: drop}]}\n  reporter: {type: pcap, config: {path: ${out}}}\n`,
        [input],
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(out).subarray(0, 4).toString('hex'), Buffer.from(magic, 'hex').reverse().toString('hex'), 'magic (little-endian)');
      const want = md5s(input, '!(sip.Method == "INVITE")');
      assert.equal(want.length, 2050);
      assert.deepEqual(md5s(out), want);
      assert.deepEqual(tshark(out, ['frame.time_epoch']), tshark(input, ['frame.time_epoch'], '!(sip.Method == "INVITE")'), 'timestamps');
      assert.equal(r.stats.reporter.acked, 2050);
    }
  });

  it('a capture of bare IPv4 (LINKTYPE_RAW): the same link type, the same frames', () => {
    const input = join(FIXTURES, 'tcpdump--LINKTYPE_RAW_ipv4.pcap');
    const out = join(dir, 'raw.pcap');
    const r = run(`task:\n  id: rawlink\n  raw: true\n  unmatched_policy: forward\n  reporter: {type: pcap, config: {path: ${out}}}\n`, [input]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(tshark(out, ['frame.encap_type']), tshark(input, ['frame.encap_type']));
    assert.deepEqual(md5s(out), md5s(input));
  });

  it('a task without raw: true is refused before anything runs', () => {
    const r = run(`task:\n  id: noraw\n  parsers: [{plugin: sip}]\n  reporter: {type: pcap, config: {path: ${join(dir, 'no.pcap')}}}\n`, [join(dir, 'calls.pcap')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /the pcap reporter .* needs `raw: true`.*OTUS_ERR_CONFIG/);
  });

  it('per call: each call file holds exactly its SIP and RTP; a call ended (BYE + grace, or idle) starts a new file; no call-id: the main file', () => {
    // 20 calls, their SIP and RTP interleaved; calls 0-9 end with BYE/200. Noise (UDP no parser takes) between.
    // Then, 60 s later: one RTP packet of call 0 (ended by BYE) and of call 15 (idle beyond call_idle 30 s).
    const frames: Uint8Array[] = [];
    const at: number[] = [];
    const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`;
    const sip = (start: string, a: string, b: string, id: string, cseq: string, body = ''): string =>
      `${start}\r\nVia: SIP/2.0/UDP ${a}:5060;branch=z9hG4bK-${id}-${cseq.replace(' ', '')}\r\nFrom: <sip:a@${a}>;tag=a\r\nTo: <sip:b@${b}>;tag=b\r\nCall-ID: ${id}\r\nCSeq: ${cseq}\r\n` +
      (body ? `Content-Type: application/sdp\r\n` : '') +
      `Content-Length: ${body.length}\r\n\r\n${body}`;
    const call = (c: number) => ({ a: `10.1.0.${c + 1}`, b: `10.2.0.${c + 1}`, id: `call-${c}@pcap.test`, pa: 30000 + 2 * c, pb: 40000 + 2 * c });
    let t = 0;
    const push = (f: Uint8Array): void => {
      frames.push(f);
      at.push(t);
      t += 1000;
    };
    for (let c = 0; c < 20; c++) {
      const k = call(c);
      push(udpFrame(k.a, k.b, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', k.a, k.b, k.id, '1 INVITE', sdp(k.a, k.pa))));
      push(udpFrame(k.b, k.a, 5060, 5060, sip('SIP/2.0 200 OK', k.b, k.a, k.id, '1 INVITE', sdp(k.b, k.pb))));
    }
    // 24 000 RTP frames (5 MiB of pcap): more than call_buffer, so call files are written while their calls go on.
    for (let i = 0; i < 600; i++) {
      for (let c = 0; c < 20; c++) {
        const k = call(c);
        push(udpFrame(k.a, k.b, k.pa, k.pb, rtpPacket(8, i, i * 160, 0x100 + c)));
        push(udpFrame(k.b, k.a, k.pb, k.pa, rtpPacket(8, i, i * 160, 0x200 + c)));
      }
      if (i % 60 === 0) push(udpFrame('192.0.2.1', '192.0.2.2', 9999, 9998, `noise ${i}`));
    }
    for (let c = 0; c < 10; c++) {
      const k = call(c);
      push(udpFrame(k.a, k.b, 5060, 5060, sip('BYE sip:b@x SIP/2.0', k.a, k.b, k.id, '2 BYE')));
      push(udpFrame(k.b, k.a, 5060, 5060, sip('SIP/2.0 200 OK', k.b, k.a, k.id, '2 BYE')));
    }
    t += 60_000_000;
    push(udpFrame(call(0).a, call(0).b, call(0).pa, call(0).pb, rtpPacket(8, 99, 99 * 160, 0x100)));
    push(udpFrame(call(15).a, call(15).b, call(15).pa, call(15).pb, rtpPacket(8, 99, 99 * 160, 0x100 + 15)));
    const input = join(dir, 'percall.pcap');
    writePcap(input, frames, (i) => at[i]!);

    const out = join(dir, 'percall');
    mkdirSync(out, { mode: 0o750 });
    const r = run(
      `task:\n  id: pc\n  raw: true\n  unmatched_policy: forward\n  parsers: [{plugin: sip}, {plugin: rtp}]\n` +
        `  reporter: {type: pcap, config: {dir: ${out}, per_call: true, call_grace: 5, call_idle: 30, max_open: 4, keep: 0, call_buffer: 1048576}}\n`,
      [input],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stats.reporter.acked, frames.length, 'every frame written');
    // 22 call files (two calls have two) through 4 descriptors: the least recently written closed, and reopened for append.
    const d = r.stats.reporter.detail;
    assert.equal(d.call_files_opened, 22);
    assert.equal(d.call_files_completed, 22);
    assert.ok(d.call_files_evicted >= 1 && d.call_files_reopened >= 1, JSON.stringify(d));
    assert.equal(d.files_completed, 1 + 22, 'the main file and the call files');
    const names = readdirSync(out).sort();
    assert.equal(names.filter((x) => x.startsWith('.')).length, 0, 'no temporary file left');
    const main = names.filter((x) => /^otus-pc-\d{8}T/.test(x));
    assert.equal(main.length, 1);
    // The input's frames by call, in one tshark pass: SIP by its Call-ID, RTP by the ports its SDP gave.
    const byCall = new Map<string, string[]>();
    for (const line of tshark(input, ['frame.md5_hash', 'sip.Call-ID', 'udp.srcport', 'udp.dstport'], undefined, true)) {
      const [md5, id, sp, dp] = line.split('\t');
      const c = id ? Number(/call-(\d+)@/.exec(id)![1]) : Number(sp) >= 30000 && Number(sp) < 40000 ? (Number(sp) - 30000) / 2 : Number(sp) >= 40000 ? (Number(sp) - 40000) / 2 : -1;
      const key = c < 0 ? 'none' : call(c).id;
      if (c >= 0) assert.equal(Number(dp), sp === String(call(c).pa) ? call(c).pb : id ? 5060 : call(c).pa);
      byCall.set(key, [...(byCall.get(key) ?? []), md5!]);
    }
    assert.deepEqual(md5s(join(out, main[0]!)), byCall.get('none'), 'the main file: the frames without a call-id');
    for (let c = 0; c < 20; c++) {
      const k = call(c);
      const files = names.filter((x) => x.startsWith(`otus-pc-call-${k.id}-`));
      const want = byCall.get(k.id);
      if (c === 0 || c === 15) {
        // The late packet is in a file of its own: the call's first file was completed at its end.
        assert.equal(files.length, 2, `call ${c}: ${files.join(' ')}`);
        assert.deepEqual([...md5s(join(out, files[0]!)), ...md5s(join(out, files[1]!))], want, `call ${c}`);
        assert.equal(md5s(join(out, files[1]!)).length, 1);
      } else {
        assert.equal(files.length, 1, `call ${c}: ${files.join(' ')}`);
        assert.deepEqual(md5s(join(out, files[0]!)), want, `call ${c}`);
      }
    }
  });

  it('per call with sip.call records: a call ends at its record (a 407 does not end it, as the SIP labels would), and sip.call and rtp.stats records are counted as what they are, not errors', () => {
    const frames: Uint8Array[] = [];
    const at: number[] = [];
    let t = 0;
    const push = (f: Uint8Array, step = 1000): void => {
      frames.push(f);
      at.push(t);
      t += step;
    };
    const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`;
    // An initial INVITE has no To tag (docs/records.md, "sip.call"); everything after it has one.
    const sip = (start: string, a: string, b: string, id: string, cseq: string, toTag: boolean, body = ''): string =>
      `${start}\r\nVia: SIP/2.0/UDP ${a}:5060;branch=z9hG4bK-${id}-${cseq.replace(' ', '')}\r\nFrom: <sip:a@${a}>;tag=a\r\nTo: <sip:b@${b}>${toTag ? ';tag=b' : ''}\r\nCall-ID: ${id}\r\nCSeq: ${cseq}\r\n` +
      (body ? 'Content-Type: application/sdp\r\n' : '') +
      `Content-Length: ${body.length}\r\n\r\n${body}`;
    // Call B, first: answered and hung up at once (its sip.call record tells the reporter the task makes them).
    const b = { a: '10.1.0.50', b: '10.2.0.50', id: 'call-b@pcap.test' };
    push(udpFrame(b.a, b.b, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', b.a, b.b, b.id, '1 INVITE', false, sdp(b.a, 31000))));
    push(udpFrame(b.b, b.a, 5060, 5060, sip('SIP/2.0 200 OK', b.b, b.a, b.id, '1 INVITE', true, sdp(b.b, 41000))));
    push(udpFrame(b.a, b.b, 5060, 5060, sip('ACK sip:b@x SIP/2.0', b.a, b.b, b.id, '1 ACK', true)));
    push(udpFrame(b.a, b.b, 5060, 5060, sip('BYE sip:b@x SIP/2.0', b.a, b.b, b.id, '2 BYE', true)));
    push(udpFrame(b.b, b.a, 5060, 5060, sip('SIP/2.0 200 OK', b.b, b.a, b.id, '2 BYE', true)));
    const nB = frames.length;
    // Call A: 407, the INVITE again with credentials, answered, 20 s of RTP both ways, BYE; 60 s later one late RTP packet.
    const a = { a: '10.1.0.1', b: '10.2.0.1', id: 'call-a@pcap.test', pa: 30000, pb: 40000 };
    push(udpFrame(a.a, a.b, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', a.a, a.b, a.id, '1 INVITE', false, sdp(a.a, a.pa))));
    push(udpFrame(a.b, a.a, 5060, 5060, sip('SIP/2.0 407 Proxy Authentication Required', a.b, a.a, a.id, '1 INVITE', true)));
    push(udpFrame(a.a, a.b, 5060, 5060, sip('ACK sip:b@x SIP/2.0', a.a, a.b, a.id, '1 ACK', true)));
    push(udpFrame(a.a, a.b, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', a.a, a.b, a.id, '2 INVITE', false, sdp(a.a, a.pa))));
    push(udpFrame(a.b, a.a, 5060, 5060, sip('SIP/2.0 200 OK', a.b, a.a, a.id, '2 INVITE', true, sdp(a.b, a.pb))));
    push(udpFrame(a.a, a.b, 5060, 5060, sip('ACK sip:b@x SIP/2.0', a.a, a.b, a.id, '2 ACK', true)));
    for (let i = 0; i < 40; i++) {
      push(udpFrame(a.a, a.b, a.pa, a.pb, rtpPacket(8, i, i * 4000, 0x100)), 1000);
      push(udpFrame(a.b, a.a, a.pb, a.pa, rtpPacket(8, i, i * 4000, 0x200)), 499_000);
    }
    push(udpFrame(a.a, a.b, 5060, 5060, sip('BYE sip:b@x SIP/2.0', a.a, a.b, a.id, '3 BYE', true)));
    push(udpFrame(a.b, a.a, 5060, 5060, sip('SIP/2.0 200 OK', a.b, a.a, a.id, '3 BYE', true)), 60_000_000);
    push(udpFrame(a.a, a.b, a.pa, a.pb, rtpPacket(8, 99, 99 * 4000, 0x100)));
    const input = join(dir, 'callrec.pcap');
    writePcap(input, frames, (i) => at[i]!);
    const md5 = (f: Uint8Array): string => createHash('md5').update(f).digest('hex');

    const parsers = '  parsers:\n    - plugin: sip\n    - plugin: rtp\n      config: {stats: {interval: 5}}\n';
    const outputs = (calls: boolean, capture = input, tag = ''): { files: (id: string) => string[][]; stats: any; records: Rec[] } => {
      const out = join(dir, `callrec-${calls}${tag}`);
      mkdirSync(out, { mode: 0o750 });
      const body = `task:\n  id: cr\n  raw: true\n${parsers}  sip: {calls: ${calls}}\n`;
      const r = run(`${body}  reporter: {type: pcap, config: {dir: ${out}, per_call: true, call_grace: 5, call_idle: 300, keep: 0}}\n`, [capture]);
      assert.equal(r.status, 0, r.stderr);
      const names = readdirSync(out).sort();
      const files = (id: string): string[][] => names.filter((x) => x.startsWith(`otus-cr-call-${id}-`)).map((x) => md5s(join(out, x)));
      return { files, stats: r.stats, records: replay(body, [capture]).records };
    };

    const withRecords = outputs(true);
    const rep = withRecords.stats.reporter;
    const summaries = withRecords.records.filter((x) => x.protocol === 'sip.call' || x.protocol === 'rtp.stats');
    assert.equal(summaries.filter((x) => x.protocol === 'sip.call').length, 2);
    assert.ok(summaries.some((x) => x.protocol === 'rtp.stats'));
    assert.deepEqual(rep.errors, {}, 'no record counted as an error');
    assert.equal(rep.detail.summary_records, summaries.length);
    assert.equal(rep.acked, frames.length + summaries.length);
    // Call A: one file from its INVITE to the 200 to its BYE, the late packet in a second.
    assert.deepEqual(withRecords.files(a.id), [frames.slice(nB, -1).map(md5), [md5(frames[frames.length - 1]!)]]);
    assert.deepEqual(withRecords.files(b.id), [frames.slice(0, nB).map(md5)]);

    // Call A alone: no sip.call record comes before its 407 is 5 s old, and still the 407 does not end it: the reporter knows
    // from its task that calls end by their records.
    const aloneInput = join(dir, 'callrec-a.pcap');
    writePcap(aloneInput, frames.slice(nB), (i) => at[nB + i]!);
    assert.deepEqual(outputs(true, aloneInput, '-alone').files(a.id), [frames.slice(nB, -1).map(md5), [md5(frames[frames.length - 1]!)]]);

    // Without sip.call records the SIP labels end call A at its 407 (+ 5 s): its RTP after that starts a second file.
    const byLabels = outputs(false);
    assert.deepEqual(byLabels.stats.reporter.errors, {}, 'rtp.stats records are not errors either');
    const split = byLabels.files(a.id);
    assert.equal(split.length, 3, 'the 407, the BYE and the late packet each ended a file');
    assert.deepEqual(split.flat(), frames.slice(nB).map(md5));
  });
});

// The hep reporter through `otus replay` to real collectors: a UDP socket
// in this process, a TCP one in a process of its own (test/helpers/hep-receiver.ts),
// a TLS one; each packet decoded by sipcapture's hep-js (test/helpers/hep.ts),
// not by an inverse of our encoder. On SIP calls (generated, with RTCP that
// the SDP ties to the call) and real captures (SIP over UDP, SIP over TCP in
// segments): every SIP message arrives once as type 1 with its bytes as
// captured, its Call-ID, flow, time, capture id, node name and password;
// every RTCP record as type 5, in the JSON layout Homer reads (checked
// against the report's bytes), the Call-ID in the correlation chunk; every
// rtp.stats record as type 34, its fields as the file reporter's records
// give them, with its Call-ID and MOS chunks; a sip.call record as type 100
// with its JSON and Call-ID; other records are counted as skipped and
// sent = records − failures. A TCP collector killed mid-run: the records
// lost are counted, the reporter reconnects to the next one, which gets the
// rest, and nothing arrives twice.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { after, test } from 'node:test';
import { chunks, HepStream, hepJsDecoder, hepJsSkipReason, sipCallFrames, sipMessageFrames, type HepDecoded } from '../helpers/hep.js';
import { readFrames, writePcap } from '../helpers/live.js';
import { freePort } from '../helpers/metrics.js';
import { assertUndelivered, FIXTURES, OTUS, replay, ROOT, type Rec } from '../helpers/otus-replay.js';

const skip = hepJsSkipReason();
if (skip) console.log(`# hep tests skipped: ${skip}`);
const dir = mkdtempSync(join(tmpdir(), 'otus-hep-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const CALLS = join(dir, 'calls.pcap');
if (!skip) writePcap(CALLS, sipCallFrames(20));
const FILES = [CALLS, join(FIXTURES, 'suricata-verify--sip-body-frames.pcap'), join(FIXTURES, 'otus--sip-tcp-segmented.pcap')];

function task(reporter: string, parsers = '    - plugin: sip\n    - plugin: rtp\n    - plugin: rtcp\n'): string {
  return `task:\n  id: hep\n  parsers:\n${parsers}  reporter:\n    type: hep\n    config: ${reporter}\n`;
}

interface Run {
  status: number | null;
  stats: any;
  stderr: string;
}

/** `otus replay` of `files` with the task, not blocking this process's event loop (a collector may live here). */
function runReplay(taskYaml: string, files: string[]): Promise<Run> {
  const t = join(dir, `task-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(t, taskYaml);
  const st = `${t}.stats.json`;
  const p = spawn(process.execPath, [OTUS, 'replay', '--task', t, '--stats-json', st, ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(p);
  let stderr = '';
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) =>
    p.on('exit', (status) => {
      let stats: any = null;
      try {
        stats = JSON.parse(readFileSync(st, 'utf8'));
      } catch {
        // no summary: the status and stderr say why
      }
      res({ status, stats, stderr });
    }),
  );
}

/** records = sent + every failure + in flight (0 at the end): the reporter's accounting adds up. */
function assertAccounting(s: any): void {
  const r = s.reporter;
  const failed = Object.values(r.errors as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(r.queued, 0);
  assert.equal(s.sender.records, r.acked + r.timeout + failed + (r.skipped ?? 0), JSON.stringify(r));
  // What HEP does not carry is no drop: not in reporter_error.
  assert.equal(s.drops.reporter_error, failed - (r.errors.queue_full ?? 0), JSON.stringify(s.drops));
}

function iso(sec: number, usec: number): string {
  return new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, `.${String(usec).padStart(6, '0')}Z`);
}

function callIdOf(sipText: string): string | undefined {
  return /^(?:Call-ID|i)[ \t]*:[ \t]*(.*?)\r?$/im.exec(sipText)?.[1];
}

/** The UDP payloads of the SIP frames (a start line, on 5060/5061) of IPv4 Ethernet captures, as the wire had them. */
function udpSipPayloads(file: string): Buffer[] {
  const out: Buffer[] = [];
  for (const f of readFrames(file)) {
    const b = Buffer.from(f);
    if (b.readUInt16BE(12) !== 0x0800 || b[23] !== 17) continue;
    const ihl = (b[14] & 15) * 4;
    const u = 14 + ihl;
    const p = b.subarray(u + 8, u + b.readUInt16BE(u + 4));
    if (/^(SIP\/2\.0 \d{3} [^\r\n]*|[A-Z]+ \S+ SIP\/2\.0)\r\n/.test(p.toString('latin1', 0, 200))) out.push(p);
  }
  return out;
}

/** A message's first line and a hash of its bytes: short enough to read in a failed comparison. */
function digest(b: Buffer): string {
  return `${b.toString('latin1', 0, Math.max(0, b.indexOf('\r\n'))).slice(0, 40)} ${createHash('sha1').update(b).digest('hex').slice(0, 12)}`;
}

interface Got {
  d: HepDecoded;
  raw: Buffer;
}

/** Checks what a collector got against the records the file reporter writes for the same replay. */
function checkAgainstRecords(got: Got[], files: string[], hepTask: string): void {
  const { records } = replay(hepTask.replace(/  reporter:[\s\S]*$/, ''), files);
  const sip = records.filter((r) => r.protocol === 'sip');
  const rtcp = records.filter((r) => r.protocol === 'rtcp');
  assert.ok(sip.length > 30 && rtcp.length === 40 && rtcp.every((r) => r.labels['call-id'] !== undefined), `${sip.length} sip, ${rtcp.length} rtcp records`);
  const t1 = got.filter((g) => g.d.rcinfo.payloadType === 1);
  const t5 = got.filter((g) => g.d.rcinfo.payloadType === 5);
  assert.equal(got.length, t1.length + t5.length);
  for (const g of got) {
    const ri = g.d.rcinfo;
    assert.equal(ri.captureId, 4242);
    assert.equal(ri.hepNodeName, 'edge-1');
    assert.equal(ri.capturePass, 's3cret');
    assert.equal(ri.protocolFamily, 2);
  }
  // Every SIP record once, by flow, time, start line and Call-ID read from the HEP payload.
  const key = (src: string, sport: number, dst: string, dport: number, proto: number, ts: string, line: string, cid: string | undefined): string =>
    `${src}:${sport}>${dst}:${dport}/${proto} ${ts} ${line} ${cid}`;
  const want = sip.map((r) => key(r.flow.src, r.flow.sport, r.flow.dst, r.flow.dport, r.flow.proto, r.ts, r.payload.start_line, r.labels['sip.call-id'])).sort();
  const have = t1
    .map(({ d }) => {
      const r = d.rcinfo;
      return key(r.srcIp!, r.srcPort, r.dstIp!, r.dstPort, r.protocol, iso(r.timeSeconds, r.timeUseconds), d.payload.split('\r\n')[0]!, callIdOf(d.payload));
    })
    .sort();
  assert.deepEqual(have, want);
  assert.ok(t1.some((g) => g.d.rcinfo.protocol === 6), 'SIP over TCP is sent too');
  // The UDP messages byte for byte as captured.
  const wire = files.flatMap((f) => (f.endsWith('segmented.pcap') ? [] : udpSipPayloads(f))).map(digest).sort();
  const sent = t1.filter((g) => g.d.rcinfo.protocol === 17).map((g) => digest(chunks(g.raw).find(([t]) => t === 0x000f)![1])).sort();
  assert.deepEqual(sent, wire);
  // RTCP: Homer's JSON layout of the report as sent on the wire, the call's Call-ID (by the call's addresses) as correlation id.
  const rwant = rtcpWire(CALLS).map((x) => JSON.stringify([x.src, x.sport, `call-${Number(x.src.split('.')[3])}@otus`, x.json])).sort();
  const rhave = t5.map(({ d }) => JSON.stringify([d.rcinfo.srcIp, d.rcinfo.srcPort, d.rcinfo.correlation_id, JSON.parse(d.payload)])).sort();
  assert.equal(rtcp.length, rwant.length);
  assert.deepEqual(rhave, rwant);
}

/** The RTCP SR and RR of a capture's IPv4 frames, read from their bytes (RFC 3550 §6.4) into the layout Homer reads. */
function rtcpWire(file: string): { src: string; sport: number; json: unknown }[] {
  const out: { src: string; sport: number; json: unknown }[] = [];
  for (const f of readFrames(file)) {
    const b = Buffer.from(f);
    if (b.readUInt16BE(12) !== 0x0800 || b[23] !== 17) continue;
    const u = 14 + (b[14] & 15) * 4;
    const r = b.subarray(u + 8, u + b.readUInt16BE(u + 4));
    const pt = r[1];
    if (r.length < 8 || (r[0] & 0xc0) !== 0x80 || (pt !== 200 && pt !== 201)) continue;
    const rc = r[0] & 31;
    const sr = pt === 200;
    let o = sr ? 28 : 8;
    const blocks = [];
    for (let i = 0; i < rc; i++, o += 24) {
      blocks.push({
        source_ssrc: r.readUInt32BE(o),
        fraction_lost: r[o + 4],
        packets_lost: r.readIntBE(o + 5, 3),
        highest_seq_no: r.readUInt32BE(o + 8),
        ia_jitter: r.readUInt32BE(o + 12),
        lsr: r.readUInt32BE(o + 16),
        dlsr: r.readUInt32BE(o + 20),
      });
    }
    const u32 = (at: number): number => (sr ? r.readUInt32BE(at) : 0);
    out.push({
      src: [...b.subarray(26, 30)].join('.'),
      sport: b.readUInt16BE(u),
      json: {
        sender_information: { ntp_timestamp_sec: u32(8), ntp_timestamp_usec: u32(12), rtp_timestamp: u32(16), packets: u32(20), octets: u32(24) },
        ssrc: r.readUInt32BE(4),
        type: pt,
        report_count: rc,
        report_blocks: blocks,
        sdes_ssrc: 0,
      },
    });
  }
  return out;
}

const REPORTER = (transport: string, port: number, extra = ''): string =>
  `{address: "127.0.0.1:${port}", transport: ${transport}, capture_id: 4242, node_name: edge-1, password: s3cret${extra}}`;

test('UDP: every SIP message and RTCP report, decoded by hep-js', { skip: skip ?? false }, async () => {
  const decode = hepJsDecoder();
  const sock = createSocket('udp4');
  const got: Got[] = [];
  sock.on('message', (m) => {
    const d = decode(m);
    assert.ok(d, 'a HEP3 packet');
    got.push({ d, raw: m });
  });
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  sock.setRecvBufferSize(8 << 20);
  const t = task(REPORTER('udp', sock.address().port));
  const r = await runReplay(t, FILES);
  assert.equal(r.status, 0, r.stderr);
  assertAccounting(r.stats);
  const rep = r.stats.reporter;
  // RTP (and what else is not SIP or RTCP) is not HEP's: skipped, counted.
  const hepRecords = r.stats.parsers.sip.records + r.stats.parsers.rtcp.records;
  assert.ok(rep.skipped >= r.stats.parsers.rtp.records);
  assert.equal(rep.skipped, r.stats.sender.records - hepRecords, JSON.stringify(r.stats.parsers));
  assert.deepEqual(rep.errors, {});
  assert.equal(r.stats.drops.reporter_error, 0);
  assert.match(r.stderr, new RegExp(`reporter: acked ${rep.acked}, timed out 0, in flight 0, skipped ${rep.skipped} \\(its format does not carry them\\), failed: none`));
  // Sent datagrams arrive on loopback; wait for the last of them.
  for (let i = 0; i < 200 && got.length < rep.acked; i++) await new Promise((res) => setTimeout(res, 10));
  sock.close();
  assert.equal(got.length, rep.acked);
  checkAgainstRecords(got, FILES, t);
});

/** A UDP collector on loopback: every datagram decoded by hep-js, in order. */
async function udpCollector(): Promise<{ sock: ReturnType<typeof createSocket>; got: HepDecoded[] }> {
  const decode = hepJsDecoder();
  const sock = createSocket('udp4');
  const got: HepDecoded[] = [];
  sock.on('message', (m) => got.push(decode(m) as HepDecoded));
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  sock.setRecvBufferSize(8 << 20);
  return { sock, got };
}

/**
 * `otus replay` of `files` with the parsers (and task keys) given, sent over
 * UDP to a collector: what it received, decoded, once the reporter's acked
 * count arrived; the run; and the same task's records from the file reporter.
 */
async function replayOverUdp(parsers: string, files: string[]): Promise<{ got: HepDecoded[]; r: Run; records: Rec[] }> {
  const { sock, got } = await udpCollector();
  const t = task(REPORTER('udp', sock.address().port), parsers);
  const r = await runReplay(t, files);
  assert.equal(r.status, 0, r.stderr);
  assertAccounting(r.stats);
  await until(() => got.length >= r.stats.reporter.acked, 'the datagrams');
  sock.close();
  return { got, r, records: replay(t.replace(/  reporter:[\s\S]*$/, ''), files).records };
}

/** Seconds and microseconds of a record's ISO time (microsecond digits). */
function secUsec(ts: string): [number, number] {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(ts)!;
  return [Date.parse(`${m[1]}Z`) / 1000, Number((m[2] ?? '').padEnd(6, '0').slice(0, 6))];
}

test('rtp.stats: each stream report as type 34 in the RTP agents\' layout, as the file reporter\'s records, decoded by hep-js', { skip: skip ?? false }, async () => {
  // The generated calls (signalled: call-id, codec) and a real G.711 stream with a lost packet (heuristic: no call), reports every 2 s.
  const parsers = '    - plugin: sip\n    - plugin: rtp\n      config: {heuristic: true, stats: {interval: 2}}\n    - plugin: rtcp\n';
  const { got, r, records } = await replayOverUdp(parsers, [CALLS, join(ROOT, 'samples/rtp-g711a.pcap')]);
  const stats = records.filter((x) => x.protocol === 'rtp.stats');
  const sent = records.filter((x) => ['sip', 'rtcp', 'rtp.stats'].includes(x.protocol)).length;
  assert.equal(r.stats.reporter.acked, sent);
  assert.equal(r.stats.reporter.skipped, records.length - sent);
  // Both kinds of report, with and without a call, with a MOS.
  assert.ok(stats.length > 40, `${stats.length} rtp.stats records`);
  assert.ok(stats.some((x) => x.payload.report === 'interval') && stats.some((x) => x.payload.report === 'end'));
  assert.ok(stats.some((x) => x.labels['call-id'] !== undefined) && stats.some((x) => x.labels['call-id'] === undefined));
  assert.ok(stats.every((x) => x.payload.mos !== null));
  const key = (src: string, sport: number, dst: string, dport: number, sec: number, usec: number): string => `${src}:${sport}>${dst}:${dport} ${sec}.${usec}`;
  const have = new Map<string, HepDecoded>();
  for (const d of got.filter((g) => g.rcinfo.payloadType === 34)) {
    const ri = d.rcinfo;
    have.set(key(ri.srcIp!, ri.srcPort, ri.dstIp!, ri.dstPort, ri.timeSeconds, ri.timeUseconds), d);
  }
  assert.equal(have.size, stats.length);
  for (const x of stats) {
    const [sec, usec] = secUsec(x.ts);
    const d = have.get(key(x.flow.src, x.flow.sport, x.flow.dst, x.flow.dport, sec, usec));
    assert.ok(d, `a type 34 packet for ${x.flow.src}:${x.flow.sport} at ${x.ts}`);
    const p = x.payload;
    const cid = x.labels['call-id'];
    assert.equal(d.rcinfo.protocol, 17);
    assert.equal(d.rcinfo.correlation_id, cid);
    assert.equal((d.rcinfo as { mos?: number }).mos, Math.round(p.mos * 100));
    assert.deepEqual(JSON.parse(d.payload), {
      CORRELATION_ID: cid ?? '',
      RTP_SIP_CALL_ID: cid ?? '',
      DELTA: p.mean_delta_ms,
      JITTER: p.jitter_ms,
      REPORT_TS: sec + usec / 1e6,
      TL_BYTE: p.bytes,
      TOTAL_PK: p.packets,
      EXPECTED_PK: p.expected,
      PACKET_LOSS: p.lost,
      MAX_JITTER: p.max_jitter_ms,
      MAX_DELTA: p.max_delta_ms,
      MEAN_JITTER: p.mean_jitter_ms,
      MOS: p.mos,
      RFACTOR: p.r_factor,
      SRC_IP: x.flow.src,
      SRC_PORT: x.flow.sport,
      DST_IP: x.flow.dst,
      DST_PORT: x.flow.dport,
      OUT_ORDER: p.out_of_order,
      CODEC_PT: p.pt,
      CLOCK: p.clock_rate,
      CODEC_NAME: x.labels.codec,
      SSRC: `0x${Number(x.labels['rtp.ssrc']).toString(16).padStart(8, '0')}`,
      REPORT_NAME: `${x.flow.src}:${x.flow.sport}`,
      REPORT_START: p.first,
      REPORT_END: p.last,
      TYPE: p.report === 'interval' ? 'PERIODIC' : 'FINAL',
    });
  }
  // A task with the rtp parser's stats alone is a task for HEP.
  const alone = await runReplay(task(REPORTER('udp', 9), '    - plugin: rtp\n      config: {heuristic: true, stats: {interval: 2}}\n'), [join(ROOT, 'samples/rtp-g711a.pcap')]);
  // Port 9 has no listener: records the kernel refused (ICMP) make the status 4; a task refused would be 2.
  assert.ok(alone.status === 0 || alone.status === 4, alone.stderr);
  assert.doesNotMatch(alone.stderr, /OTUS_ERR_PLUGIN_CONFIG/);
});

test('sip.call: each call record as type 100 (a log), its JSON as the file reporter writes it, the Call-ID as correlation id, decoded by hep-js', { skip: skip ?? false }, async () => {
  // The generated calls' INVITEs carry a To tag (in-dialog, no call record); the fixtures' calls are initial INVITEs, answered and ended.
  const { got, r, records } = await replayOverUdp('    - plugin: sip\n  sip: {calls: true}\n', FILES);
  const calls = records.filter((x) => x.protocol === 'sip.call');
  assert.ok(calls.length >= 2, `${calls.length} sip.call records`);
  const sent = records.filter((x) => x.protocol === 'sip' || x.protocol === 'sip.call').length;
  assert.equal(r.stats.reporter.acked, sent);
  assert.equal(r.stats.reporter.skipped ?? 0, records.length - sent);
  const logs = new Map<string, HepDecoded>();
  for (const d of got.filter((g) => g.rcinfo.payloadType === 100)) logs.set(d.rcinfo.correlation_id!, d);
  assert.equal(logs.size, calls.length);
  for (const x of calls) {
    const d = logs.get(x.labels['call-id']);
    assert.ok(d, `a type 100 packet for ${x.labels['call-id']}`);
    assert.deepEqual(JSON.parse(d.payload), x.payload);
    const [sec, usec] = secUsec(x.ts);
    assert.deepEqual([d.rcinfo.srcIp, d.rcinfo.srcPort, d.rcinfo.dstIp, d.rcinfo.dstPort, d.rcinfo.timeSeconds, d.rcinfo.timeUseconds], [x.flow.src, x.flow.sport, x.flow.dst, x.flow.dport, sec, usec]);
  }
});

/** Starts the TCP collector process; resolves with its packets so far, once it listens. */
function receiver(port: number, pauseAfter?: number): Promise<{ proc: ChildProcess; got: Got[]; lines: string[]; port: number }> {
  const args = [join(ROOT, 'dist/test/helpers/hep-receiver.js'), String(port), ...(pauseAfter !== undefined ? [String(pauseAfter)] : [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  const got: Got[] = [];
  const lines: string[] = [];
  let buf = '';
  return new Promise((res, rej) => {
    proc.on('exit', (c) => rej(new Error(`receiver exited ${c} before listening`)));
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (l.startsWith('{')) {
          const o = JSON.parse(l) as { d: HepDecoded; hex: string };
          got.push({ d: o.d, raw: Buffer.from(o.hex, 'hex') });
        } else lines.push(l);
        if (l === 'listening') res({ proc, got, lines, port });
      }
    });
  });
}


async function until(cond: () => boolean, what: string, ms = 60000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

test('TCP: every SIP message and RTCP report, decoded by hep-js', { skip: skip ?? false }, async () => {
  const rx = await receiver(await freePort());
  const t = task(REPORTER('tcp', rx.port));
  const r = await runReplay(t, FILES);
  assert.equal(r.status, 0, r.stderr);
  assertAccounting(r.stats);
  assert.deepEqual(r.stats.reporter.errors, {});
  assert.ok(r.stats.reporter.skipped > 0);
  await until(() => rx.got.length >= r.stats.reporter.acked, 'the collector to read every packet');
  assert.equal(rx.got.length, r.stats.reporter.acked);
  rx.proc.kill('SIGKILL');
  checkAgainstRecords(rx.got, FILES, t);
});

test('TLS: the messages arrive over a verified TLS connection', { skip: skip ?? (spawnSync('openssl', ['version']).status !== 0 ? 'openssl not found' : false) }, async () => {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const decode = hepJsDecoder();
  const got: HepDecoded[] = [];
  const server = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (s) => {
    const frames = new HepStream();
    s.on('data', (d: Buffer) => {
      for (const p of frames.push(d)) got.push(decode(p) as HepDecoded);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as AddressInfo).port;
  const file = join(FIXTURES, 'suricata-verify--sip-body-frames.pcap');
  const r = await runReplay(task(REPORTER('tls', port, `, tls: {ca: "${cert}"}`), '    - plugin: sip\n'), [file]);
  assert.equal(r.status, 0, r.stderr);
  assertAccounting(r.stats);
  assert.equal(r.stats.reporter.acked, r.stats.sender.records);
  await until(() => got.length >= r.stats.reporter.acked, 'the TLS collector to read every packet');
  server.close();
  assert.deepEqual(got.map((d) => d.payload).sort(), udpSipPayloads(file).map((b) => b.toString()).sort());
  // A certificate the CA does not vouch for: nothing is sent, every record counted.
  const other = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k2.pem'), '-out', join(dir, 'c2.pem'), '-days', '1', '-subj', '/CN=other'], { encoding: 'utf8' });
  assert.equal(other.status, 0, other.stderr);
  const server2 = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (s) => s.on('error', () => undefined));
  await new Promise<void>((res) => server2.listen(0, '127.0.0.1', () => res()));
  const r2 = await runReplay(task(REPORTER('tls', (server2.address() as AddressInfo).port, `, tls: {ca: "${join(dir, 'c2.pem')}"}, delivery_timeout_ms: 500`), '    - plugin: sip\n'), [file]);
  server2.close();
  assertUndelivered(r2, r2.stats.sender.records);
  assertAccounting(r2.stats);
  assert.equal(r2.stats.reporter.acked, 0);
  assert.equal(r2.stats.reporter.timeout, r2.stats.sender.records);
});

test('TCP collector killed mid-run: the lost records are counted, the reporter reconnects, nothing arrives twice', { skip: skip ?? false }, async () => {
  const N = 60000;
  const big = join(dir, 'messages.pcap');
  writePcap(big, sipMessageFrames(N));
  const port = await freePort();
  const rx1 = await receiver(port, 5000);
  const run = runReplay(task(REPORTER('tcp', port, ', queue_max_messages: 2000, delivery_timeout_ms: 1500, reconnect_max_ms: 300'), '    - plugin: sip\n'), [big]);
  await until(() => rx1.lines.includes('paused'), 'the first collector to stop reading');
  rx1.proc.kill('SIGKILL');
  await new Promise((res) => rx1.proc.once('exit', res));
  // The outage: longer than delivery_timeout_ms, so records queued for it time out.
  await new Promise((res) => setTimeout(res, 2500));
  const rx2 = await receiver(port);
  const r = await run;
  const rep = r.stats.reporter;
  assertUndelivered(r, rep.timeout + Object.values(rep.errors as Record<string, number>).reduce((a: number, b: number) => a + b, 0));
  assertAccounting(r.stats);
  assert.equal(r.stats.sender.records, N);
  const lost = rep.timeout + Object.values(rep.errors as Record<string, number>).reduce((a: number, b: number) => a + b, 0);
  assert.ok(lost > 0, `records lost in the outage are counted: ${JSON.stringify(rep)}`);
  assert.ok(rep.timeout > 0, 'records queued through the outage timed out');
  // The second collector got the end of the run: the reporter reconnected.
  await until(() => rx2.got.some((g) => callIdOf(g.d.payload) === `m-${N - 1}`), 'the last message at the second collector');
  rx2.proc.kill('SIGKILL');
  const ids = [...rx1.got, ...rx2.got].map((g) => callIdOf(g.d.payload));
  assert.ok(rx1.got.length >= 5000 && rx2.got.length > 0);
  assert.equal(new Set(ids).size, ids.length, 'no message twice');
  // Sent means handed to the kernel: what the killed collector had not read is lost uncounted, never more than was sent.
  assert.ok(ids.length <= rep.acked, `${ids.length} received, ${rep.acked} sent`);
  console.log(`collector killed: ${JSON.stringify(rep)}; received ${rx1.got.length} + ${rx2.got.length}`);
});

test('a task without sip or rtcp is refused, naming the reporter', { skip: skip ?? false }, async () => {
  const r = await runReplay(task(REPORTER('udp', 9), '    - plugin: dns\n'), [join(FIXTURES, 'tcpdump--dns_udp.pcap')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /OTUS_ERR_PLUGIN_CONFIG/);
  assert.match(r.stderr, /hep reporter sends SIP messages \(the sip parser\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('IPv6: the address chunks are 0x0005 and 0x0006, family 10', { skip: skip ?? false }, async () => {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  const file = join(FIXTURES, 'packetnet--ipv6_rtcp1.pcap');
  const r = await runReplay(task(REPORTER('udp', sock.address().port), '    - plugin: rtcp\n      config: {heuristic: true}\n'), [file]);
  assert.equal(r.status, 0, r.stderr);
  await until(() => got.length >= r.stats.reporter.acked, 'the datagrams');
  sock.close();
  assert.ok(got.length > 0);
  const { records } = replay(task('{}', '    - plugin: rtcp\n      config: {heuristic: true}\n').replace(/  reporter:[\s\S]*$/, ''), [file]);
  const rec = records.find((x: Rec) => x.protocol === 'rtcp')!;
  const d = hepJsDecoder()(got[0]!) as HepDecoded;
  assert.equal(d.rcinfo.protocolFamily, 10);
  assert.equal(d.rcinfo.payloadType, 5);
  const c = new Map(chunks(got[0]!));
  assert.equal(ip6(c.get(0x0005)!), rec.flow.src);
  assert.equal(ip6(c.get(0x0006)!), rec.flow.dst);
  assert.ok(!c.has(0x0003) && !c.has(0x0004));
});

/** 16 bytes as RFC 5952 text (what records hold): the longest run of two or more zero groups as ::. */
function ip6(b: Buffer): string {
  const g = [...Array(8)].map((_, i) => b.readUInt16BE(2 * i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

test('the collector and its password from the global configuration, merged under the task', { skip: skip ?? false }, () => {
  const g = join(dir, 'otus.yml');
  writeFileSync(g, 'otus:\n  reporters:\n    hep: {address: "homer.example:9060", transport: tcp, password: "${HEP_TEST_PASSWORD}"}\n');
  const t = join(dir, 'voip.yml');
  writeFileSync(t, 'task:\n  id: voip\n  parsers: [{plugin: sip}, {plugin: rtcp}]\n  reporter: {type: hep, config: {capture_id: 7}}\n');
  const r = spawnSync(process.execPath, [OTUS, 'validate', '--config', g, '--task', t, '--json'], { encoding: 'utf8', env: { ...process.env, HEP_TEST_PASSWORD: 'pw' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const rep = (out.task ?? out).reporter;
  assert.deepEqual(rep.config, { address: 'homer.example:9060', transport: 'tcp', password: 'pw', capture_id: 7, queue_max_messages: 10000, delivery_timeout_ms: 10000, reconnect_max_ms: 5000 });
  // A bad key is refused with its place.
  writeFileSync(t, 'task:\n  id: voip\n  parsers: [{plugin: sip}]\n  reporter: {type: hep, config: {capture_id: -1}}\n');
  const bad = spawnSync(process.execPath, [OTUS, 'validate', '--config', g, '--task', t], { encoding: 'utf8', env: { ...process.env, HEP_TEST_PASSWORD: 'pw' } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /reporter\.config\.capture_id.*\[OTUS_ERR_PLUGIN_CONFIG\]/);
});

// Real calls, made during the test by sipp between two network namespaces and
// captured live on the veth between them (tcpdump writes the file; `otus capture`
// runs beside it as a cross-check), then run through `otus replay` with the sip,
// rtp and rtcp parsers on 1 and 2 capture processes; and the same task run live
// beside them (`otus capture --task`, 2 fanout members):
//   udp         SIP over UDP; the caller plays samples/rtp-g711a.pcap (PCMA)
//   tcp         SIP over TCP (-t t1), a 3 KB INVITE over several segments; caller plays
//   fragmented  SIP over UDP, a 3 KB INVITE that leaves as IP fragments; the callee
//               answers on hold (c=0.0.0.0) and plays toward the INVITE's endpoint,
//               so that RTP is labelled only if the reassembled INVITE was parsed
// Every SIP message of every call is checked (method/status, CSeq, Call-ID and tags
// as sipp sent them), and every RTP and RTCP packet on the wire must carry its
// call's call-id and codec. Scenarios: test/fixtures/sipp (README there).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeNetnsPair, type NetnsPair, readFrames, removeOrphanPairNamespaces, tempDir, waitFor } from '../helpers/live.js';
import { OTUS, ROOT, type Rec, replay } from '../helpers/otus-replay.js';

const UAC_IP = '10.77.0.1'; // namespace a: the callers
const UAS_IP = '10.77.0.2'; // namespace b: the callees; capture here
const CALLS = 3; // per scenario, all three scenarios at once
const PAD = 3000; // bytes of X-Otus-Pad: INVITE ≈ 3.5 KB > MTU 1500
// samples/rtp-g711a.pcap: 229 RTP packets (PT 8, PCMA) from port 2006 to 2008 and one
// RTCP SR+SDES from 2007 to 2009; sipp replays their payloads to the remote media port
// (RTCP to port + 1) from the player's [auto_media_port] (media_port + 4 × (call - 1)).
const SAMPLE_RTP = 229;
const SAMPLE_RTCP = 1;

interface Scenario {
  name: string;
  port: number; // SIP port, both sides
  transport: 'u1' | 't1';
  uac: string;
  uas: string;
  uacMedia: number; // -mp of each side
  uasMedia: number;
  pad: boolean;
  player: 'uac' | 'uas';
}

const SCENARIOS: Scenario[] = [
  { name: 'udp', port: 5060, transport: 'u1', uac: 'uac.xml', uas: 'uas.xml', uacMedia: 40000, uasMedia: 30000, pad: false, player: 'uac' },
  { name: 'tcp', port: 5062, transport: 't1', uac: 'uac.xml', uas: 'uas.xml', uacMedia: 42000, uasMedia: 32000, pad: true, player: 'uac' },
  { name: 'fragmented', port: 5064, transport: 'u1', uac: 'uac-receives.xml', uas: 'uas-plays.xml', uacMedia: 44000, uasMedia: 34000, pad: true, player: 'uas' },
];

const TASK = `task:
  id: sipp-live
  parsers:
    - plugin: sip
      config: {ports: [${SCENARIOS.map((s) => s.port).join(', ')}]}
    - plugin: rtp
    - plugin: rtcp
  unmatched_policy: drop
`;

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return `needs root: ip netns, AF_PACKET capture and sipp's raw-socket RTP play (running as uid ${process.getuid?.()})`;
  if (!have('sipp')) return 'sipp not installed (Debian package sip-tester)';
  for (const tool of ['ip', 'tcpdump', 'ss']) if (!have(tool)) return `needs ${tool} (scripts/setup.sh --test installs it)`;
  if (!/PCAP/.test(spawnSync('sipp', ['-v'], { encoding: 'utf8' }).stdout ?? '')) return 'sipp built without PCAP play (play_pcap_audio)';
  return null;
}

const skip = skipReason();

interface Proc {
  name: string;
  child: ChildProcess;
  out: string;
  err: string;
  code: number | null;
  exited: boolean;
}

const procs: Proc[] = [];

/** Runs `cmd args` inside namespace `ns` (ip netns exec execs it: same pid). Output kept, at most 1 MB each. */
function startIn(ns: string, name: string, cmd: string, args: string[]): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { name, child, out: '', err: '', code: null, exited: false };
  child.stdout!.on('data', (d: Buffer) => {
    if (p.out.length < 1 << 20) p.out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (p.err.length < 1 << 20) p.err += d.toString();
  });
  child.on('exit', (code, signal) => {
    p.code = code ?? (signal ? 128 : null);
    p.exited = true;
  });
  procs.push(p);
  return p;
}

const tail = (s: string, n = 1500): string => (s.length > n ? `…${s.slice(-n)}` : s);

/** What sipp printed last, and its error log. */
function sippReport(p: Proc, errFile: string): string {
  let log = '';
  try {
    log = readFileSync(errFile, 'utf8');
  } catch {
    // no errors logged
  }
  return `${p.name} exit ${p.code}: ${tail(p.err)} ${tail(p.out, 600)} errors: ${tail(log)}`;
}

// ------------------------------------------------------------- frames on the wire

interface WireFrame {
  ipv4: boolean;
  proto: number;
  src: string;
  dst: string;
  ipId: number;
  fragment: boolean; // MF set or offset > 0
  firstFragment: boolean;
  sport: number;
  dport: number;
  l4PayloadLen: number; // TCP payload, or UDP payload when not a fragment
  frameLen: number;
}

/** Our own reading of the Ethernet/IPv4/UDP/TCP headers (no VLANs here), independent of Otus. */
function wireFrames(file: string): WireFrame[] {
  return readFrames(file).map((b) => {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const f: WireFrame = { ipv4: false, proto: 0, src: '', dst: '', ipId: 0, fragment: false, firstFragment: false, sport: 0, dport: 0, l4PayloadLen: 0, frameLen: b.length };
    if (b.length < 34 || v.getUint16(12) !== 0x0800) return f;
    f.ipv4 = true;
    const ihl = (b[14]! & 15) * 4;
    const ipLen = v.getUint16(16);
    f.ipId = v.getUint16(18);
    const fo = v.getUint16(20);
    f.fragment = (fo & 0x3fff) !== 0;
    f.firstFragment = (fo & 0x1fff) === 0;
    f.proto = b[23]!;
    f.src = b.subarray(26, 30).join('.');
    f.dst = b.subarray(30, 34).join('.');
    const t = 14 + ihl;
    if (!f.firstFragment || b.length < t + 8) return f;
    f.sport = v.getUint16(t);
    f.dport = v.getUint16(t + 2);
    if (f.proto === 17 && !f.fragment) f.l4PayloadLen = v.getUint16(t + 4) - 8;
    if (f.proto === 6) f.l4PayloadLen = 14 + ipLen - t - (b[t + 12]! >> 4) * 4;
    return f;
  });
}

// ------------------------------------------------------------- expectations

interface Media {
  scenario: Scenario;
  call: number; // sipp's call number, 1-based
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

/** The RTP flow of each call: from the player's [auto_media_port] to the other side's. */
function mediaFlows(): Media[] {
  const out: Media[] = [];
  for (const s of SCENARIOS) {
    for (let call = 1; call <= CALLS; call++) {
      const uac = { ip: UAC_IP, port: s.uacMedia + 4 * (call - 1) };
      const uas = { ip: UAS_IP, port: s.uasMedia + 4 * (call - 1) };
      const [from, to] = s.player === 'uac' ? [uac, uas] : [uas, uac];
      out.push({ scenario: s, call, src: from.ip, sport: from.port, dst: to.ip, dport: to.port });
    }
  }
  return out;
}

/** The seven messages of one call, as the scenarios send them: kind and CSeq. */
const CALL_MESSAGES = ['INVITE 1 INVITE', '100 1 INVITE', '180 1 INVITE', '200 1 INVITE', 'ACK 1 ACK', 'BYE 2 BYE', '200 2 BYE'];

describe('sipp calls between two namespaces, captured live, parsed and correlated', { skip: skip ?? false }, () => {
  let pair: NetnsPair | undefined;
  let tmp: ReturnType<typeof tempDir>;
  let pcapFile = '';
  let otusCapture: Proc;
  let liveTask: Proc;
  const uacs = new Map<string, Proc>();
  const uass = new Map<string, Proc>();
  const errFiles = new Map<Proc, string>();
  let wire: WireFrame[] = [];
  let callsMs = 0;

  before(async () => {
    removeOrphanPairNamespaces();
    tmp = tempDir();
    pair = makeNetnsPair(UAC_IP, UAS_IP);
    const { a, b } = pair;
    // No TCP segmentation offload on the callers' side: a 3.5 KB INVITE goes out as
    // MSS-sized segments, as on a real wire, instead of one GSO frame.
    execFileSync('ip', ['-n', a.ns, 'link', 'set', 'dev', a.ifname, 'gso_max_segs', '1']);

    pcapFile = join(tmp.dir, 'calls.pcap');
    // --immediate-mode: without it libpcap's TPACKET_V3 block timeout keeps the last frames
    // in the kernel ring, and SIGINT loses them (seen: the final BYEs missing from the file).
    const tcpdump = startIn(b.ns, 'tcpdump', 'tcpdump', ['-i', b.ifname, '-n', '--immediate-mode', '-U', '-s', '0', '-w', pcapFile]);
    otusCapture = startIn(b.ns, 'otus capture', process.execPath, [OTUS, 'capture', '-i', b.ifname, '--driver', 'af_packet_v3', '--no-defrag']);
    // The task itself, live: two fanout members, so a call's SIP and its media can land on different capture processes.
    const taskFile = join(tmp.dir, 'task.yml');
    writeFileSync(taskFile, TASK.replace('unmatched_policy: drop', 'unmatched_policy: forward'));
    liveTask = startIn(b.ns, 'otus capture --task', process.execPath, [
      OTUS, 'capture', '--task', taskFile, '-i', b.ifname, '--workers', '2',
      '--out', join(tmp.dir, 'live.ndjson'), '--stats-json', join(tmp.dir, 'live-stats.json'),
    ]);
    assert.ok(await waitFor(() => /listening on/.test(tcpdump.err) || tcpdump.exited, 20000), `tcpdump: ${tcpdump.err}`);
    assert.ok(await waitFor(() => /capturing/.test(otusCapture.err) || otusCapture.exited, 20000), `otus capture: ${otusCapture.err}`);
    assert.ok(await waitFor(() => /capturing/.test(liveTask.err) || liveTask.exited, 20000), `otus capture --task: ${liveTask.err}`);
    assert.ok(!tcpdump.exited && !otusCapture.exited && !liveTask.exited, `${tcpdump.err} ${otusCapture.err} ${liveTask.err}`);

    const t0 = Date.now();
    for (const s of SCENARIOS) {
      const err = join(tmp.dir, `uas-${s.name}.err`);
      const p = startIn(b.ns, `sipp uas ${s.name}`, 'sipp', [
        '-sf', join(ROOT, 'test/fixtures/sipp', s.uas),
        '-i', UAS_IP, '-p', String(s.port), '-t', s.transport, '-mp', String(s.uasMedia),
        '-m', String(CALLS), '-nostdin', '-trace_err', '-error_file', err,
        ...(s.transport === 'u1' ? ['-nr'] : []),
      ]);
      uass.set(s.name, p);
      errFiles.set(p, err);
    }
    // The callees listen before the callers start.
    const listening = (): boolean => {
      const r = spawnSync('ip', ['netns', 'exec', b.ns, 'ss', '-Hlntu'], { encoding: 'utf8' });
      return SCENARIOS.every((s) => new RegExp(`${UAS_IP.replace(/\./g, '\\.')}:${s.port}\\b`).test(r.stdout));
    };
    assert.ok(await waitFor(() => listening() || [...uass.values()].some((p) => p.exited), 20000), [...uass.values()].map((p) => sippReport(p, errFiles.get(p)!)).join('\n'));
    for (const s of SCENARIOS) {
      const err = join(tmp.dir, `uac-${s.name}.err`);
      const p = startIn(a.ns, `sipp uac ${s.name}`, 'sipp', [
        '-sf', join(ROOT, 'test/fixtures/sipp', s.uac), `${UAS_IP}:${s.port}`,
        '-i', UAC_IP, '-p', String(s.port), '-t', s.transport, '-mp', String(s.uacMedia),
        '-m', String(CALLS), '-l', String(CALLS), '-r', '5',
        '-key', 'pad', s.pad ? 'x'.repeat(PAD) : 'none',
        '-nostdin', '-timeout', '40s', '-timeout_error', '-trace_err', '-error_file', err,
        // UDP without retransmissions: each message is sent once, so the counts below are exact
        // (a loss would fail the call, and sipp's exit code says so).
        ...(s.transport === 'u1' ? ['-nr'] : []),
      ]);
      uacs.set(s.name, p);
      errFiles.set(p, err);
    }
    const sipps = [...uacs.values(), ...uass.values()];
    const done = await waitFor(() => sipps.every((p) => p.exited), 50000);
    callsMs = Date.now() - t0;
    // Quiet for a moment (the last 200 OK and TCP FINs are on the wire), then stop both captures.
    await new Promise((r) => setTimeout(r, 700));
    tcpdump.child.kill('SIGINT');
    otusCapture.child.kill('SIGINT');
    liveTask.child.kill('SIGINT');
    assert.ok(await waitFor(() => tcpdump.exited && otusCapture.exited && liveTask.exited, 15000), 'captures stopped');
    assert.ok(done, `sipp still running after 50 s: ${sipps.filter((p) => !p.exited).map((p) => sippReport(p, errFiles.get(p)!)).join('\n')}`);
    wire = wireFrames(pcapFile);
  });

  after(() => {
    for (const p of procs) if (!p.exited) p.child.kill('SIGKILL');
    pair?.destroy();
    if (process.env.OTUS_TEST_KEEP) console.log(`# kept ${tmp?.dir} (OTUS_TEST_KEEP)`);
    else tmp?.cleanup();
  });

  test('sipp completed every call of every scenario', (t) => {
    for (const p of [...uacs.values(), ...uass.values()]) assert.equal(p.code, 0, sippReport(p, errFiles.get(p)!));
    t.diagnostic(`${SCENARIOS.length * CALLS} calls in ${(callsMs / 1000).toFixed(1)} s; ${wire.length} frames captured`);
  });

  test('the wire: IP-fragmented INVITEs, a TCP INVITE over several segments, the whole sample played per call', () => {
    const frag = SCENARIOS.find((s) => s.name === 'fragmented')!;
    const fragments = wire.filter((f) => f.fragment);
    const datagrams = new Map<number, WireFrame[]>();
    for (const f of fragments) datagrams.set(f.ipId, [...(datagrams.get(f.ipId) ?? []), f]);
    assert.equal(datagrams.size, CALLS, `fragmented datagrams (one INVITE per call): ${datagrams.size}`);
    for (const parts of datagrams.values()) {
      assert.ok(parts.length >= 3, `a ${PAD}-byte pad makes ≥ 3 fragments at MTU 1500: ${parts.length}`);
      const first = parts.find((f) => f.firstFragment)!;
      assert.deepEqual([first.src, first.dst, first.proto, first.sport, first.dport], [UAC_IP, UAS_IP, 17, frag.port, frag.port]);
      assert.ok(parts.every((f) => f.frameLen <= 1514));
    }
    // TCP: the callers sent INVITE, ACK and BYE per call, in more data segments than messages.
    const tcp = SCENARIOS.find((s) => s.transport === 't1')!;
    const segs = wire.filter((f) => f.proto === 6 && f.src === UAC_IP && f.dport === tcp.port && f.l4PayloadLen > 0);
    assert.ok(segs.length >= CALLS * (3 + 2), `TCP data segments from the caller: ${segs.length}`);
    assert.ok(segs.every((f) => f.frameLen <= 1514), 'no GSO super-frames on the wire');
    // Every call played the whole sample (sipp's doing; the premise of the counts below).
    for (const m of mediaFlows()) {
      const rtp = wire.filter((f) => f.proto === 17 && f.src === m.src && f.dst === m.dst && f.sport === m.sport && f.dport === m.dport);
      const rtcp = wire.filter((f) => f.proto === 17 && f.src === m.src && f.dst === m.dst && f.sport === m.sport + 1 && f.dport === m.dport + 1);
      assert.equal(rtp.length, SAMPLE_RTP, `${m.scenario.name} call ${m.call}: RTP ${m.sport} → ${m.dport}`);
      assert.equal(rtcp.length, SAMPLE_RTCP, `${m.scenario.name} call ${m.call}: RTCP`);
    }
  });

  test('otus capture (af_packet_v3) saw the frames tcpdump wrote, decoded alike', () => {
    assert.equal(otusCapture.code, 0, otusCapture.err);
    assert.match(otusCapture.err, /stopped: signal/);
    assert.match(otusCapture.err, /kernel_drops=0/);
    // The same NDJSON as `otus decode` of tcpdump's file, frame numbers and times aside.
    const dec = spawnSync(process.execPath, [OTUS, 'decode', pcapFile], { encoding: 'utf8', maxBuffer: 256 << 20 });
    assert.equal(dec.status, 0, dec.stderr);
    const norm = (ndjson: string): string[] =>
      ndjson
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const o = JSON.parse(l) as Record<string, unknown>;
          delete o.frame;
          delete o.ts;
          return JSON.stringify(o);
        });
    const fromFile = norm(dec.stdout);
    const live = norm(otusCapture.out);
    assert.equal(fromFile.length, wire.length);
    assert.equal(live.length, fromFile.length, `frames: otus capture ${live.length}, tcpdump ${fromFile.length}`);
    // Two sockets can see frames sent at the same moment from two CPUs in a
    // different order, so compare the frames as sets, not position by position.
    const a = [...live].sort();
    const b = [...fromFile].sort();
    const i = a.findIndex((l, k) => l !== b[k]);
    assert.equal(i, -1, `otus capture ${a[i]} vs tcpdump ${b[i]}`);
  });

  /**
   * Every SIP message of every call parsed whole, every RTP/RTCP packet on the
   * wire labelled with its call. `live` (several capture processes): the
   * caller checks that any RTP packet forwarded unlabelled (as unmatched,
   * only before its flow's first labelled packet) is one whose catch-up
   * gave up at its deadline (src/capture-proc/catch-up.ts); returns how
   * many there were.
   */
  function checkCalls(records: Rec[], live = false): number {
    let unlabelled = 0;
    const byProto = (p: string): Rec[] => records.filter((r) => r.protocol === p);

    // ---- SIP: seven messages per call, labelled as sipp sent them.
    const sip = byProto('sip');
    assert.equal(sip.length, SCENARIOS.length * CALLS * CALL_MESSAGES.length, `SIP records: ${sip.length}`);
    for (const s of SCENARIOS) {
      const uacPid = uacs.get(s.name)!.child.pid!;
      const uasPid = uass.get(s.name)!.child.pid!;
      const recs = sip.filter((r) => r.flow.sport === s.port && r.flow.dport === s.port && r.flow.proto === (s.transport === 't1' ? 6 : 17));
      const calls = new Map<string, Rec[]>();
      for (const r of recs) calls.set(r.labels['sip.call-id']!, [...(calls.get(r.labels['sip.call-id']!) ?? []), r]);
      // sipp's [call_id]: <call number>-<pid>@<local ip>
      const want = Array.from({ length: CALLS }, (_, i) => `${i + 1}-${uacPid}@${UAC_IP}`);
      assert.deepEqual([...calls.keys()].sort(), want.sort(), `${s.name}: call-ids`);
      for (const [callId, msgs] of calls) {
        const n = Number(callId.split('-')[0]);
        const kinds = msgs.map((r) => `${r.labels['sip.method'] ?? r.labels['sip.status']} ${r.labels['sip.cseq']}`);
        assert.deepEqual(kinds.sort(), [...CALL_MESSAGES].sort(), `${s.name} ${callId}`);
        for (const r of msgs) {
          assert.equal(r.labels['sip.from-tag'], `${uacPid}uac${n}`, `${s.name} ${callId} from-tag`);
          assert.equal(r.labels['sip.from'], `sip:uac@${UAC_IP}:${s.port}`);
          assert.equal(r.labels['sip.to'], `sip:otus@${UAS_IP}:${s.port}`);
          if (r.labels['sip.status'] && r.labels['sip.status'] !== '100') assert.equal(r.labels['sip.to-tag'], `${uasPid}uas${n}`, `${s.name} ${callId} to-tag`);
          assert.equal(r.payload.body_truncated, false);
        }
        // The INVITE whole: the pad header and, after it, the SDP offer with this call's port.
        const invite = msgs.find((r) => r.labels['sip.method'] === 'INVITE')!;
        assert.equal(invite.labels['sip.user-agent'], 'otus-sipp-uac');
        const pad = (invite.payload.headers as [string, string][]).find(([k]) => k === 'X-Otus-Pad');
        assert.equal(pad?.[1], s.pad ? 'x'.repeat(PAD) : 'none', `${s.name} ${callId}: X-Otus-Pad`);
        assert.match(invite.payload.body, new RegExp(`\r\nm=audio ${s.uacMedia + 4 * (n - 1)} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`));
        const ok = msgs.find((r) => r.labels['sip.status'] === '200' && r.labels['sip.cseq'] === '1 INVITE')!;
        assert.match(ok.payload.body, new RegExp(`\r\nm=audio ${s.uasMedia + 4 * (n - 1)} RTP/AVP 8\r\n`));
        if (s.name === 'fragmented') assert.match(ok.payload.body, /\r\nc=IN IP4 0\.0\.0\.0\r\n/);
      }
    }

    // ---- RTP and RTCP: every packet on the wire, with its call's call-id and codec.
    const rtp = byProto('rtp');
    const rtcp = byProto('rtcp');
    const flows = mediaFlows();
    if (!live) assert.equal(rtp.length, flows.length * SAMPLE_RTP, `RTP records: ${rtp.length}`);
    assert.equal(rtcp.length, flows.length * SAMPLE_RTCP, `RTCP records: ${rtcp.length}`);
    for (const m of flows) {
      const callId = `${m.call}-${uacs.get(m.scenario.name)!.child.pid}@${UAC_IP}`;
      const what = `${m.scenario.name} call ${m.call}`;
      const onFlow = (r: Rec): boolean => r.flow.src === m.src && r.flow.dst === m.dst && r.flow.sport === m.sport && r.flow.dport === m.dport;
      const mine = rtp.filter(onFlow);
      const before = live ? records.filter((r) => r.protocol === 'udp' && onFlow(r)) : [];
      assert.equal(mine.length + before.length, SAMPLE_RTP, `${what}: RTP records`);
      const firstLabelled = mine.map((r) => r.ts).sort()[0]!;
      assert.ok(before.every((r) => r.ts < firstLabelled), `${what}: unlabelled RTP only before the first labelled one`);
      unlabelled += before.length;
      for (const r of mine) {
        assert.equal(r.labels['call-id'], callId, `${what}: RTP seq ${r.labels['rtp.seq']}`);
        assert.equal(r.labels.codec, 'PCMA', what);
        assert.equal(r.labels['rtp.pt'], '8', what);
        assert.equal(r.labels.media, 'audio', what);
      }
      const ctl = rtcp.filter((r) => r.flow.sport === m.sport + 1 && r.flow.dport === m.dport + 1 && r.flow.src === m.src);
      assert.equal(ctl.length, SAMPLE_RTCP, `${what}: RTCP records`);
      for (const r of ctl) {
        assert.equal(r.labels['call-id'], callId, `${what}: RTCP`);
        assert.equal(r.labels['rtcp.type'], 'SR');
      }
    }
    return unlabelled;
  }

  for (const workers of [1, 2]) {
    test(`otus replay, ${workers} capture process(es): every SIP message parsed whole, every RTP/RTCP packet with its call`, () => {
      const { records, stats } = replay(TASK, [pcapFile], workers);
      checkCalls(records);
      // Most RTP took the fast path (src/pipeline/fast-path.ts); checkCalls holds it to the same labels.
      const rtp = mediaFlows().length * SAMPLE_RTP;
      assert.ok(stats.fast_path_records > rtp / 2 && stats.fast_path_records <= rtp, `fast path: ${stats.fast_path_records} of ${rtp} RTP records`);
      // ---- Nothing lost on the way.
      assert.equal(stats.frames, wire.length);
      assert.deepEqual(stats.decode_errors, {});
      // Each fragmented INVITE: all its fragments but the completing one were held for reassembly.
      assert.equal(stats.held_fragments, wire.filter((f) => f.fragment).length - CALLS, 'fragments held');
      for (const k of ['decode', 'filter', 'parser_no_output', 'encode', 'ring_tail', 'ring_head', 'ring_abandoned', 'sender_expand']) assert.equal(stats.drops[k], 0, `drops.${k}`);
      if (workers === 2) {
        const perProcess = (stats.capture_processes as { frames: number }[]).map((p) => p.frames);
        assert.ok(perProcess.every((n) => n > 0), `both capture processes got frames: ${perProcess}`);
      }
    });
  }

  test('otus capture --task, live on 2 fanout members: the same calls, parsed and labelled as they happen', (t) => {
    assert.equal(liveTask.code, 0, liveTask.err);
    assert.match(liveTask.err, /stopped: signal/);
    const records = readFileSync(join(tmp.dir, 'live.ndjson'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);
    const stats = JSON.parse(readFileSync(join(tmp.dir, 'live-stats.json'), 'utf8'));
    const unlabelled = checkCalls(records, true);
    const procs = stats.capture_processes as { frames: number; kernel_packets: number; kernel_drops: number; catchup_waits: number; catchup_deadlines: number; catchup_quiet: number }[];
    const waits = procs.reduce((n, p) => n + p.catchup_waits, 0);
    const deadlines = procs.reduce((n, p) => n + p.catchup_deadlines, 0);
    // A flow waits once; its later misses within 2 s do not wait again (counted as quiet).
    const quiet = procs.reduce((n, p) => n + p.catchup_quiet, 0);
    t.diagnostic(`registry misses that waited for the other capture process: ${waits}, of which ${deadlines} to the deadline; RTP forwarded unlabelled: ${unlabelled} of ${mediaFlows().length * SAMPLE_RTP}`);
    // A call's first RTP packet can reach its capture process before the SDP, read by the other, is registered: it then waits for it.
    assert.ok(procs.every((p) => Number.isInteger(p.catchup_waits)), 'both processes run the catch-up');
    // On a loaded machine a wait can run out: then that packet, and the flow's next misses that do not wait again, go out unlabelled.
    assert.ok(unlabelled <= deadlines + (deadlines > 0 ? quiet : 0), `every unlabelled RTP packet is one whose catch-up ran out, or a later miss of such a flow (${unlabelled} > ${deadlines} + ${quiet})`);
    assert.ok(stats.fast_path_records > 0, 'the fast path ran live');
    // Fanout's defrag flag hands each fragmented INVITE over whole: one frame for its fragments.
    const fragments = wire.filter((f) => f.fragment).length;
    assert.equal(stats.frames, wire.length - fragments + CALLS, 'frames: the wire, fragmented datagrams as one');
    assert.equal(stats.held_fragments, 0);
    assert.deepEqual(stats.decode_errors, {});
    for (const k of ['decode', 'filter', 'unmatched', 'parser_no_output', 'encode', 'ring_tail', 'ring_head', 'ring_abandoned', 'sender_expand']) assert.equal(stats.drops[k], 0, `drops.${k}`);
    assert.equal(procs.length, 2);
    assert.ok(procs.every((p) => p.frames > 0 && p.kernel_drops === 0 && p.kernel_packets === p.frames), `per process: ${JSON.stringify(procs)}`);
    assert.equal(stats.records, records.length);
    // Every record's capture → sender latency measured (a block is handed over within retire-ms of its first frame).
    const lat = stats.sender.latency as { records: number; p50_us: number; p99_us: number; max_us: number };
    assert.equal(lat.records, records.length);
    assert.ok(lat.p50_us > 0 && lat.p50_us <= lat.p99_us && lat.p99_us <= lat.max_us && lat.max_us < 5e6, JSON.stringify(lat));
  });
});

// The user-space BPF interpreter against libpcap itself: for each filter and
// each fixture capture, BpfProgram running the program tcpdump compiled
// (`tcpdump -ddd`) must accept exactly the frames `tcpdump -r FILE -w - FILTER`
// writes, and the program replay compiles (compileFilter) may differ only
// where libpcap compiles differently for a savefile. Then the validator
// (hand-made bad programs), hand-checked semantics, and a fuzz that must never throw.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openCapture, openCaptureBuffer } from '../../src/capture-file/open.js';
import { BpfProgram, dltForLinkType } from '../../src/capture/bpf-vm.js';
import { compileFilter } from '../../src/capture/filter.js';
import { OtusError } from '../../src/util/errors.js';
import { udpFrame } from '../helpers/udp-frames.js';
import { allCaptures } from '../pipeline/helpers.js';

const SNAPLEN = 262144;

const FILTERS = [
  'udp',
  'tcp port 80',
  'port 5060',
  'udp and dst port 53',
  'host 192.168.0.1',
  'net 10.0.0.0/8',
  'ip6',
  'vlan',
  'vlan and udp',
  'ip[6:2] & 0x1fff != 0',
  'tcp[tcpflags] & tcp-syn != 0',
  'ether multicast',
  'less 100',
  'greater 500',
  'icmp or icmp6',
  'ip proto 47',
  'not arp',
  'udp portrange 10000-20000',
  'ip6 and tcp',
  '(tcp or udp) and port 443',
];

/** Expressions libpcap compiles to ALU operations (div/mod/neg/shift by X ...), for the mutated-frame comparison. */
const ARITHMETIC_FILTERS = [
  'ip[2:2] / ip[1] > 2', // div x, X (TOS) often 0
  'ip[2:2] / ip[1] < 100000', // true unless X = 0, which drops the frame
  'ip[2:2] % ip[1] < 1000',
  'ip[2:2] % 7 = 3',
  '-ip[8] > 5',
  'ip[2:2] << (ip[8] & 63) != 0', // lsh x, X up to 63
  'ip[2:2] >> (ip[9] & 63) = 0',
  'ip[2:2] * 3 - 5 > 200',
  'ip[2:2] ^ 0xff > 100',
  'ip[8] - ip[9] > 40',
  'ip[ip[0] & 0xf] = 0',
  'ip[2:2] + ip[2:2] * ip[2:2] > 1000000',
  'ether[len - 4:4] & 0xff = 1', // loads at an offset computed from the wire length
];

interface StoredFrame {
  buf: Uint8Array;
  off: number;
  caplen: number;
  len: number;
  linkType: number;
}

/** A capture as tcpdump will read it: `path`, one link type, its frames in order. */
interface Unit {
  name: string;
  path: string;
  linkType: number;
  frames: StoredFrame[];
}

function readFrames(path: string): StoredFrame[] {
  const r = openCapture(path);
  const out: StoredFrame[] = [];
  while (r.next()) out.push({ buf: r.frame.buf, off: r.frame.off, caplen: r.frame.caplen, len: r.frame.len, linkType: r.frame.linkType });
  return out;
}

/** A classic little-endian pcap of `frames` (timestamps zero). */
function pcapBytes(frames: StoredFrame[], linkType: number): Buffer {
  const parts: Buffer[] = [];
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(0xa1b2c3d4, 0);
  hdr.writeUInt16LE(2, 4);
  hdr.writeUInt16LE(4, 6);
  hdr.writeUInt32LE(SNAPLEN, 16);
  hdr.writeUInt32LE(linkType, 20);
  parts.push(hdr);
  for (const f of frames) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(f.caplen, 8);
    rec.writeUInt32LE(f.len, 12);
    parts.push(rec, Buffer.from(f.buf.buffer, f.buf.byteOffset + f.off, f.caplen));
  }
  return Buffer.concat(parts);
}

type Rows = [number, number, number, number][];

/** A compiled program and its instructions, or libpcap's reason it cannot compile. */
type Compiled = { ok: true; rows: Rows; program: BpfProgram } | { ok: false; error: string };

/** tcpdump's stdout, or the lines of its stderr that are not chatter. */
function runTcpdump(args: string[]): Promise<{ ok: true; stdout: Buffer } | { ok: false; stderr: string }> {
  return new Promise((resolve) => {
    execFile('tcpdump', args, { maxBuffer: 256 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      const errors = stderr.toString().split('\n').filter((l) => l !== '' && !l.startsWith('reading from file') && !l.startsWith('Warning:'));
      if (err || errors.length) resolve({ ok: false, stderr: errors.join('; ') || String(err) });
      else resolve({ ok: true, stdout });
    });
  });
}

/**
 * The frames libpcap's filter accepts in `path` ('' = all frames), as
 * `tcpdump -r path -w - -- filter` writes them. (tcpdump's --number counts the
 * frames that passed the filter, not the frames read, so it cannot name them;
 * `--` keeps a filter such as `-ip[8] > 5` from being read as options.)
 */
async function libpcapAccepts(path: string, filter: string): Promise<{ ok: true; frames: StoredFrame[] } | { ok: false; stderr: string }> {
  const r = await runTcpdump(['-r', path, '-w', '-', '--', ...(filter === '' ? [] : [filter])]);
  if (!r.ok) return r;
  const reader = openCaptureBuffer(new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length), `tcpdump -w - of ${path}`);
  const frames: StoredFrame[] = [];
  while (reader.next()) frames.push({ buf: reader.frame.buf, off: reader.frame.off, caplen: reader.frame.caplen, len: reader.frame.len, linkType: reader.frame.linkType });
  return { ok: true, frames };
}

/** The program libpcap compiles for `filter` when it reads `path` (`tcpdump -ddd`: a count, then "code jt jf k" lines). */
async function libpcapProgram(path: string, filter: string): Promise<Compiled> {
  const r = await runTcpdump(['-r', path, '-ddd', '--', filter]);
  if (!r.ok) return { ok: false, error: r.stderr };
  const [count, ...lines] = r.stdout.toString().trim().split('\n');
  const rows = lines.map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number, number]);
  assert.equal(rows.length, Number(count));
  return { ok: true, rows, program: new BpfProgram(assemble(rows), `tcpdump -ddd '${filter}'`) };
}

/** The program replay runs: compileFilter on a dead handle for the frame's link type. */
function replayProgram(filter: string, linkType: number): Compiled {
  try {
    const insns = compileFilter(filter, SNAPLEN, dltForLinkType(linkType));
    return { ok: true, rows: rowsOf(insns), program: new BpfProgram(insns, `filter "${filter}"`) };
  } catch (e) {
    if (!(e instanceof OtusError) || e.code !== 'OTUS_ERR_FILTER') throw e;
    return { ok: false, error: e.message.replace(`filter "${filter}": `, '') };
  }
}

/** The rows with every accepting `ret #k` made `ret #1`: programs that differ only in snaplen compare equal. */
function verdictShape(rows: Rows): string {
  return rows.map(([code, jt, jf, k]) => `${code},${jt},${jf},${code === RET_K && k !== 0 ? 1 : k}`).join(' ');
}

function sameFrame(a: StoredFrame, b: StoredFrame): boolean {
  if (a.caplen !== b.caplen || a.len !== b.len) return false;
  for (let i = 0; i < a.caplen; i++) if (a.buf[a.off + i] !== b.buf[b.off + i]) return false;
  return true;
}

/**
 * Which of `frames` (0-based) are `accepted`, a subsequence of them. Frames
 * with equal bytes and length get equal verdicts from any filter, so taking
 * the first match in order is never wrong. null if some accepted frame is none of them.
 */
function indicesOf(accepted: StoredFrame[], frames: StoredFrame[]): number[] | null {
  const out: number[] = [];
  let i = 0;
  for (const a of accepted) {
    while (i < frames.length && !sameFrame(a, frames[i]!)) i++;
    if (i === frames.length) return null;
    out.push(i++);
  }
  return out;
}

/** Runs `jobs` with at most `width` in flight. */
async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

/** Deterministic PRNG (xorshift32) so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

interface Tally {
  pairs: number;
  frames: number;
  accepted: number;
  /** Filter x capture pairs libpcap cannot compile, by reason. */
  skipped: Map<string, number>;
  /** The VM running libpcap's own program disagrees with libpcap: a VM bug. */
  vmMismatches: string[];
  /** compileFilter's program (dead handle) is not the one libpcap compiles for the file: `linktype 'filter'` -> frames judged differently. */
  compileDifferences: Map<string, number>;
  perFilter: Map<string, { accepted: number; dropped: number }>;
}

/**
 * For every filter on every unit: tcpdump's accepted frames against the VM
 * running (1) the very program tcpdump compiled for the file and (2) the
 * program replay gets from compileFilter. (1) must agree frame for frame;
 * (2) can differ only where the two programs differ.
 */
async function compareWithLibpcap(units: Unit[], filters: string[]): Promise<Tally> {
  const tally: Tally = { pairs: 0, frames: 0, accepted: 0, skipped: new Map(), vmMismatches: [], compileDifferences: new Map(), perFilter: new Map() };
  const pairs = units.flatMap((unit) => filters.map((filter) => ({ unit, filter })));
  // libpcap's program depends on the link type (and, for the RET value, the snaplen), so one file per link type shows it.
  const programKey = (filter: string, linkType: number): string => `${linkType} '${filter}'`;
  const programPairs = [...new Map(pairs.map((p) => [programKey(p.filter, p.unit.linkType), p])).entries()];
  const [accepts, libPrograms] = await Promise.all([
    pool(pairs.map(({ unit, filter }) => () => libpcapAccepts(unit.path, filter)), 3),
    pool(programPairs.map(([, { unit, filter }]) => () => libpcapProgram(unit.path, filter)), 1),
  ]);
  const libProgram = new Map(programPairs.map(([key], i) => [key, libPrograms[i]!]));
  const ours = new Map<string, Compiled>();

  pairs.forEach(({ unit, filter }, i) => {
    const key = programKey(filter, unit.linkType);
    if (!ours.has(key)) ours.set(key, replayProgram(filter, unit.linkType));
    const replay = ours.get(key)!;
    const lib = libProgram.get(key)!;
    const libAccepts = accepts[i]!;
    const where = `${unit.name} '${filter}'`;
    if (!replay.ok) {
      // Both are libpcap's compiler: tcpdump must refuse the filter for the same reason.
      assert.ok(!lib.ok && lib.error.includes(replay.error) && !libAccepts.ok, `${where}: we cannot compile (${replay.error}) but tcpdump can`);
      const why = `linktype ${unit.linkType}: ${replay.error}`;
      tally.skipped.set(why, (tally.skipped.get(why) ?? 0) + 1);
      return;
    }
    assert.ok(lib.ok, `${where}: tcpdump -ddd failed: ${lib.ok ? '' : lib.error}`);
    assert.ok(libAccepts.ok, `${where}: tcpdump failed: ${libAccepts.ok ? '' : libAccepts.stderr}`);
    const libIndices = indicesOf(libAccepts.frames, unit.frames);
    assert.ok(libIndices, `${where}: tcpdump wrote a frame that is not in the capture`);
    const expected = new Set(libIndices);

    const only: { vm: number[]; lib: number[] } = { vm: [], lib: [] };
    let replayDiffers = 0;
    const counts = tally.perFilter.get(filter) ?? { accepted: 0, dropped: 0 };
    unit.frames.forEach((f, idx) => {
      const wanted = expected.has(idx);
      const sameProgram = lib.program.run(f.buf, f.off, f.caplen, f.len) !== 0;
      if (sameProgram !== wanted) (sameProgram ? only.vm : only.lib).push(idx + 1);
      const verdict = replay.program.run(f.buf, f.off, f.caplen, f.len);
      if (verdict !== 0) assert.equal(verdict, SNAPLEN, `${where}: accepting RET is not the snaplen`);
      if ((verdict !== 0) !== wanted) replayDiffers++;
      if (wanted) counts.accepted++;
      else counts.dropped++;
    });
    tally.perFilter.set(filter, counts);
    tally.pairs++;
    tally.frames += unit.frames.length;
    tally.accepted += expected.size;
    if (only.vm.length || only.lib.length) {
      tally.vmMismatches.push(`${where}: accepted only by the VM: [${only.vm.slice(0, 10)}], only by libpcap: [${only.lib.slice(0, 10)}]`);
    }
    if (verdictShape(replay.rows) !== verdictShape(lib.rows)) {
      tally.compileDifferences.set(key, (tally.compileDifferences.get(key) ?? 0) + replayDiffers);
    } else {
      // Same program, same bytes: the verdicts cannot differ unless the VM is not deterministic.
      assert.equal(replayDiffers, 0, `${where}: identical programs judged differently`);
    }
  });
  return tally;
}

function report(t: { diagnostic(msg: string): void }, what: string, tally: Tally): void {
  t.diagnostic(`${what}: ${tally.pairs} filter x capture pairs, ${tally.frames} frame verdicts, ${tally.accepted} accepted by libpcap, ${tally.vmMismatches.length} pairs where the VM disagrees`);
  for (const [why, n] of [...tally.skipped].sort((a, b) => b[1] - a[1])) t.diagnostic(`  skipped ${n} pairs: ${why}`);
  for (const [key, n] of tally.compileDifferences) t.diagnostic(`  compileFilter's program differs from tcpdump's for linktype ${key}: ${n} frames judged differently`);
  for (const m of tally.vmMismatches.slice(0, 20)) t.diagnostic(`  MISMATCH ${m}`);
}

let ethernetCache: StoredFrame[] | null = null;
/** Every Ethernet frame of the fixtures: raw material for mutation and fuzzing. */
function ethernetFrames(): StoredFrame[] {
  ethernetCache ??= allCaptures().flatMap((path) => readFrames(path).filter((f) => f.linkType === 1));
  return ethernetCache;
}

const noTcpdump = spawnSync('tcpdump', ['--version']).error ? 'tcpdump is not installed' : false;

describe('BpfProgram vs libpcap (tcpdump -r as the oracle)', { skip: noTcpdump }, () => {
  test('every fixture capture, every filter: same accepted frames', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'otus-bpf-'));
    try {
      const captures = allCaptures();
      const probes = await pool(captures.map((path) => () => libpcapAccepts(path, '')), 3);
      const units: Unit[] = [];
      const rewritten = new Map<string, number>();
      captures.forEach((path, i) => {
        const frames = readFrames(path);
        if (frames.length === 0) return;
        const probe = probes[i]!;
        const linkTypes = [...new Set(frames.map((f) => f.linkType))];
        if (probe.ok && probe.frames.length === frames.length && linkTypes.length === 1 && probe.frames.every((f, j) => sameFrame(f, frames[j]!))) {
          units.push({ name: basename(path), path, linkType: linkTypes[0]!, frames });
          return;
        }
        // libpcap stops reading this file (mixed link types or snaplens in a pcapng, a newer
        // version): its frames go to one plain pcap per link type, which libpcap does read.
        const why = probe.ok ? `tcpdump read ${probe.frames.length} of ${frames.length} frames, or other bytes` : probe.stderr.replace(/^tcpdump: (pcap_loop: )?/, '');
        rewritten.set(why, (rewritten.get(why) ?? 0) + 1);
        for (const lt of linkTypes) {
          const sub = frames.filter((f) => f.linkType === lt);
          const out = join(dir, `${basename(path)}.lt${lt}.pcap`);
          writeFileSync(out, pcapBytes(sub, lt));
          units.push({ name: `${basename(path)} (linktype ${lt}, rewritten)`, path: out, linkType: lt, frames: sub });
        }
      });
      for (const [why, n] of rewritten) t.diagnostic(`rewritten for libpcap: ${n} captures: ${why}`);

      const tally = await compareWithLibpcap(units, FILTERS);
      report(t, `${units.length} captures`, tally);
      assert.deepEqual(tally.vmMismatches, []);
      assert.ok(tally.frames > 10000, `only ${tally.frames} frame verdicts compared`);
      // A filter that never accepts, or never drops, would prove little (no fixture has HTTPS; the mutated set does).
      for (const f of FILTERS.filter((f) => f !== '(tcp or udp) and port 443')) {
        const c = tally.perFilter.get(f);
        assert.ok(c && c.accepted > 0 && c.dropped > 0, `'${f}' accepted ${c?.accepted} and dropped ${c?.dropped}: the fixtures do not exercise it`);
      }
      // Replay compiles on a dead handle, tcpdump for a savefile. libpcap then differs only
      // for BSD loopback: a savefile's `ip6` checks every BSD AF_INET6 value (24, 28, 30),
      // a dead handle only the host's (Linux: 10). The VM is not involved.
      for (const key of tally.compileDifferences.keys()) assert.match(key, /^0 /, `compileFilter and tcpdump compile ${key} differently`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('mutated and truncated Ethernet frames, arithmetic filters too: same verdicts', async (t) => {
    const baseFrames = ethernetFrames();
    assert.ok(baseFrames.length > 1000);
    const dir = mkdtempSync(join(tmpdir(), 'otus-bpf-'));
    try {
      const rand = rng(0x5eed);
      const frames: StoredFrame[] = [];
      for (let i = 0; i < 4000; i++) {
        const src = baseFrames[Math.floor(rand() * baseFrames.length)]!;
        const bytes = src.buf.slice(src.off, src.off + src.caplen);
        // Flip a few header bytes (where filters look), cut the capture short, vary the wire length.
        const flips = Math.floor(rand() * 4);
        for (let j = 0; j < flips && bytes.length; j++) bytes[Math.floor(rand() * Math.min(bytes.length, 80))] = Math.floor(rand() * 256);
        const caplen = rand() < 0.5 ? Math.floor(rand() * (bytes.length + 1)) : bytes.length;
        const len = rand() < 0.2 ? caplen + Math.floor(rand() * 2000) : Math.max(caplen, src.len);
        frames.push({ buf: bytes, off: 0, caplen, len, linkType: 1 });
      }
      // No fixture has HTTPS; one UDP and one TCP (a SYN) frame to port 443 give that filter something to accept.
      const https = udpFrame('10.1.2.3', '192.168.0.1', 40000, 443, 'hello');
      const syn = udpFrame('10.1.2.3', '192.168.0.1', 40001, 443, new Uint8Array(12));
      syn[23] = 6; // protocol TCP: the 20 bytes from offset 34 read as a TCP header
      syn[34 + 12] = 0x50; // data offset 5
      syn[34 + 13] = 0x02; // SYN
      for (const b of [https, syn]) frames.push({ buf: b, off: 0, caplen: b.length, len: b.length, linkType: 1 });
      const path = join(dir, 'mutated.pcap');
      writeFileSync(path, pcapBytes(frames, 1));
      const tally = await compareWithLibpcap([{ name: 'mutated.pcap', path, linkType: 1, frames }], [...FILTERS, ...ARITHMETIC_FILTERS]);
      report(t, 'mutated frames', tally);
      assert.deepEqual(tally.vmMismatches, []);
      assert.equal(tally.skipped.size, 0);
      assert.deepEqual([...tally.compileDifferences.keys()], []);
      for (const f of [...FILTERS, ...ARITHMETIC_FILTERS]) {
        const c = tally.perFilter.get(f);
        assert.ok(c && c.accepted > 0 && c.dropped > 0, `'${f}' accepted ${c?.accepted} and dropped ${c?.dropped} mutated frames`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** struct sock_filter[] in host byte order from [code, jt, jf, k] rows. */
function assemble(rows: Rows): Uint8Array {
  const bytes = new Uint8Array(rows.length * 8);
  const codes = new Uint16Array(bytes.buffer);
  const words = new Uint32Array(bytes.buffer);
  rows.forEach(([code, jt, jf, k], i) => {
    codes[i * 4] = code;
    bytes[i * 8 + 2] = jt;
    bytes[i * 8 + 3] = jf;
    words[i * 2 + 1] = k >>> 0;
  });
  return bytes;
}

/** The [code, jt, jf, k] rows of struct sock_filter[] bytes. */
function rowsOf(insns: Uint8Array): Rows {
  const copy = new Uint8Array(insns);
  const codes = new Uint16Array(copy.buffer);
  const words = new Uint32Array(copy.buffer);
  return Array.from({ length: copy.length / 8 }, (_, i): [number, number, number, number] => [codes[i * 4]!, copy[i * 8 + 2]!, copy[i * 8 + 3]!, words[i * 2 + 1]!]);
}

// Opcodes used by the hand-made programs.
const LD_IMM = 0x00;
const LDX_IMM = 0x01;
const ST = 0x02;
const STX = 0x03;
const JA = 0x05;
const RET_K = 0x06;
const RET_A = 0x16;
const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const LD_W_IND = 0x40;
const LD_H_IND = 0x48;
const LD_B_IND = 0x50;
const LD_MEM = 0x60;
const LDX_MEM = 0x61;
const LD_LEN = 0x80;
const LDX_LEN = 0x81;
const LDX_MSH = 0xb1;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const JGE_X = 0x3d;
const JSET_K = 0x45;
const ALU = (op: number, x = false): number => 0x04 | op | (x ? 0x08 : 0);
const ADD = 0x00;
const SUB = 0x10;
const MUL = 0x20;
const DIV = 0x30;
const OR = 0x40;
const AND = 0x50;
const LSH = 0x60;
const RSH = 0x70;
const NEG = 0x80;
const MOD = 0x90;
const XOR = 0xa0;
const TAX = 0x07;
const TXA = 0x87;

describe('BpfProgram validation', () => {
  const bad: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /empty program/],
    ['not whole instructions', new Uint8Array(12), /not a whole number/],
    ['conditional jump out of range', assemble([[LD_IMM, 0, 0, 1], [JEQ_K, 0, 2, 1], [RET_K, 0, 0, 1]]), /instruction 1 .*jump to 4 is past the last instruction 2/],
    ['ja out of range', assemble([[JA, 0, 0, 1], [RET_K, 0, 0, 1]]), /instruction 0 .*jump to 2/],
    ['ja backward', assemble([[RET_K, 0, 0, 0], [JA, 0, 0, -2], [RET_K, 0, 0, 1]]), /instruction 1 .*backward jump \(by -2\)/],
    ['unknown opcode', assemble([[0x99, 0, 0, 0], [RET_K, 0, 0, 0]]), /instruction 0 \(code 0x0099, k 0\): unknown opcode/],
    ['ld with a size that means nothing', assemble([[0x88, 0, 0, 0], [RET_K, 0, 0, 0]]), /unknown opcode/], // BPF_LD|BPF_H|BPF_LEN
    ['no return at the end', assemble([[LD_IMM, 0, 0, 1], [TAX, 0, 0, 0]]), /last instruction 1 .* is not a return/],
    ['st M[16]', assemble([[ST, 0, 0, 16], [RET_K, 0, 0, 0]]), /scratch memory index 16 out of range/],
    ['ldx M[16]', assemble([[LDX_MEM, 0, 0, 16], [RET_K, 0, 0, 0]]), /scratch memory index 16 out of range/],
    ['div #0', assemble([[LD_IMM, 0, 0, 1], [ALU(DIV), 0, 0, 0], [RET_A, 0, 0, 0]]), /instruction 1 .*division by constant 0/],
    ['mod #0', assemble([[ALU(MOD), 0, 0, 0], [RET_A, 0, 0, 0]]), /division by constant 0/],
    ['lsh #32', assemble([[ALU(LSH), 0, 0, 32], [RET_A, 0, 0, 0]]), /shift by 32 or more/],
    ['load of scratch memory never stored', assemble([[LD_MEM, 0, 0, 3], [RET_A, 0, 0, 0]]), /loads scratch memory M\[3\] that may not have been stored/],
    [
      'load of scratch memory stored on one path only',
      assemble([[LD_B_ABS, 0, 0, 0], [JEQ_K, 0, 1, 1], [ST, 0, 0, 2], [LD_MEM, 0, 0, 2], [RET_A, 0, 0, 0]]),
      /instruction 3 loads scratch memory M\[2\]/,
    ],
    ['ancillary load', assemble([[LD_B_ABS, 0, 0, 0xfffff000 + 44], [RET_A, 0, 0, 0]]), /ancillary load/],
  ];
  for (const [what, insns, message] of bad) {
    test(`refuses: ${what}`, () => {
      assert.throws(() => new BpfProgram(insns, 'test program'), (e: unknown) => {
        assert.ok(e instanceof OtusError, String(e));
        assert.equal(e.code, 'OTUS_ERR_FILTER');
        assert.match(e.message, /^test program: /);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  test("refuses libpcap's protochain, whose loop is a backward jump (the kernel refuses it too)", () => {
    const insns = compileFilter('ip6 protochain 6', SNAPLEN, 1);
    assert.throws(() => new BpfProgram(insns, 'filter "ip6 protochain 6"'), { code: 'OTUS_ERR_FILTER', message: /^filter "ip6 protochain 6": instruction \d+ \(code 0x0005 ja, .*backward jump/ });
  });

  test('accepts scratch memory stored on every path, and every libpcap filter above', () => {
    const p = new BpfProgram(assemble([[LD_B_ABS, 0, 0, 0], [JEQ_K, 0, 2, 1], [ST, 0, 0, 2], [JA, 0, 0, 1], [ST, 0, 0, 2], [LD_MEM, 0, 0, 2], [RET_A, 0, 0, 0]]));
    assert.equal(p.run(new Uint8Array([1]), 0, 1, 1), 1);
    assert.equal(p.run(new Uint8Array([7]), 0, 1, 1), 7);
    for (const f of [...FILTERS, ...ARITHMETIC_FILTERS]) new BpfProgram(compileFilter(f, SNAPLEN, 1), f);
  });
});

describe('BpfProgram semantics', () => {
  /** Runs `rows` followed by `ret a` over `bytes`, returning A. */
  const acc = (rows: [number, number, number, number][], bytes: number[] = [], len = bytes.length): number =>
    new BpfProgram(assemble([...rows, [RET_A, 0, 0, 0]])).run(new Uint8Array(bytes), 0, bytes.length, len);

  test('loads: big-endian words, halves, bytes; absolute and indexed; past caplen drops', () => {
    const b = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
    assert.equal(acc([[LD_W_ABS, 0, 0, 4]], b), 0x9abcdef0);
    assert.equal(acc([[LD_H_ABS, 0, 0, 6]], b), 0xdef0);
    assert.equal(acc([[LD_B_ABS, 0, 0, 7]], b), 0xf0);
    assert.equal(acc([[LD_W_ABS, 0, 0, 5]], b), 0); // one byte short
    assert.equal(acc([[LD_H_ABS, 0, 0, 7]], b), 0);
    assert.equal(acc([[LD_B_ABS, 0, 0, 8]], b), 0);
    assert.equal(acc([[LDX_IMM, 0, 0, 3], [LD_W_IND, 0, 0, 1]], b), 0x9abcdef0);
    assert.equal(acc([[LDX_IMM, 0, 0, 3], [LD_B_IND, 0, 0, 4]], b), 0xf0);
    assert.equal(acc([[LDX_IMM, 0, 0, 3], [LD_B_IND, 0, 0, 5]], b), 0);
    // X + k wrapping to a small offset is still out of range (libpcap checks without wrap-around).
    for (const load of [LD_W_IND, LD_H_IND, LD_B_IND]) assert.equal(acc([[LDX_IMM, 0, 0, 0xffffffff], [load, 0, 0, 2]], b), 0);
    assert.equal(acc([[LDX_IMM, 0, 0, 2], [LD_H_IND, 0, 0, 4]], b), 0xdef0);
    assert.equal(acc([[LDX_IMM, 0, 0, 2], [LD_H_IND, 0, 0, 5]], b), 0);
    assert.equal(acc([[LDX_MSH, 0, 0, 0], [TXA, 0, 0, 0]], [0x45]), 20);
    assert.equal(acc([[LDX_MSH, 0, 0, 1], [TXA, 0, 0, 0]], [0x45]), 0);
    // Wire length, not captured length.
    assert.equal(acc([[LD_LEN, 0, 0, 0]], b, 1514), 1514);
    assert.equal(acc([[LDX_LEN, 0, 0, 0], [TXA, 0, 0, 0]], b, 0xffffffff), 0xffffffff);
    // The frame at an offset in a larger buffer; caplen beyond the buffer is not read.
    const p = new BpfProgram(assemble([[LD_H_ABS, 0, 0, 1], [RET_A, 0, 0, 0]]));
    assert.equal(p.run(new Uint8Array([9, 9, 1, 2, 3]), 2, 3, 3), 0x0203);
    assert.equal(p.run(new Uint8Array([9, 9, 1, 2]), 3, 100, 100), 0);
  });

  test('ALU: unsigned 32-bit, division by X = 0 drops, shifts by X >= 32 give 0', () => {
    const big = 0xfffffff0;
    assert.equal(acc([[LD_IMM, 0, 0, big], [ALU(ADD), 0, 0, 0x20]]), 0x10);
    assert.equal(acc([[LD_IMM, 0, 0, 1], [ALU(SUB), 0, 0, 2]]), 0xffffffff);
    assert.equal(acc([[LD_IMM, 0, 0, 0x10001], [ALU(MUL), 0, 0, 0x10001]]), 0x20001);
    assert.equal(acc([[LD_IMM, 0, 0, big], [ALU(DIV), 0, 0, 3]]), Math.floor(big / 3));
    assert.equal(acc([[LD_IMM, 0, 0, big], [ALU(MOD), 0, 0, 7]]), big % 7);
    assert.equal(acc([[LD_IMM, 0, 0, big], [LDX_IMM, 0, 0, 0x80000000], [ALU(DIV, true), 0, 0, 0]]), 1);
    // Division by X = 0 ends the program with 0 (drop), whatever would follow.
    const byZero = (op: number): number => new BpfProgram(assemble([[LD_IMM, 0, 0, 5], [LDX_IMM, 0, 0, 0], [ALU(op, true), 0, 0, 0], [RET_K, 0, 0, 7]])).run(new Uint8Array(0), 0, 0, 0);
    assert.equal(byZero(DIV), 0);
    assert.equal(byZero(MOD), 0);
    assert.equal(acc([[LD_IMM, 0, 0, 0xf0f0], [ALU(AND), 0, 0, 0xff00], [ALU(OR), 0, 0, 0x80000000], [ALU(XOR), 0, 0, 0xffffffff]]), 0x7fff0fff);
    assert.equal(acc([[LD_IMM, 0, 0, 3], [ALU(LSH), 0, 0, 31]]), 0x80000000);
    assert.equal(acc([[LD_IMM, 0, 0, 0x80000000], [ALU(RSH), 0, 0, 31]]), 1);
    assert.equal(acc([[LD_IMM, 0, 0, 1], [LDX_IMM, 0, 0, 32], [ALU(LSH, true), 0, 0, 0]]), 0);
    assert.equal(acc([[LD_IMM, 0, 0, 0x80000000], [LDX_IMM, 0, 0, 33], [ALU(RSH, true), 0, 0, 0]]), 0);
    assert.equal(acc([[LD_IMM, 0, 0, 1], [LDX_IMM, 0, 0, 31], [ALU(LSH, true), 0, 0, 0]]), 0x80000000);
    assert.equal(acc([[LD_IMM, 0, 0, 1], [ALU(NEG), 0, 0, 0]]), 0xffffffff);
    assert.equal(acc([[LD_IMM, 0, 0, 0x80000000], [ALU(NEG), 0, 0, 0]]), 0x80000000);
    assert.equal(acc([[LD_IMM, 0, 0, 7], [ST, 0, 0, 15], [LD_IMM, 0, 0, 1], [LDX_MEM, 0, 0, 15], [STX, 0, 0, 0], [LD_MEM, 0, 0, 0], [ALU(ADD, true), 0, 0, 0]]), 14);
  });

  test('jumps compare unsigned; RET returns k or A', () => {
    const cmp = (rows: [number, number, number, number][]): number => new BpfProgram(assemble([...rows, [RET_K, 0, 0, 1], [RET_K, 0, 0, 2]])).run(new Uint8Array(0), 0, 0, 0);
    assert.equal(cmp([[LD_IMM, 0, 0, 0x80000000], [JGT_K, 0, 1, 1]]), 1); // 2^31 > 1 unsigned
    assert.equal(cmp([[LD_IMM, 0, 0, 5], [LDX_IMM, 0, 0, 0xffffffff], [JGE_X, 0, 1, 0]]), 2);
    assert.equal(cmp([[LD_IMM, 0, 0, 0xffffffff], [JEQ_K, 0, 1, 0xffffffff]]), 1);
    assert.equal(cmp([[LD_IMM, 0, 0, 6], [JSET_K, 0, 1, 1]]), 2);
    assert.equal(cmp([[JA, 0, 0, 2], [RET_K, 0, 0, 3]]), 2);
    assert.equal(new BpfProgram(assemble([[RET_K, 0, 0, 0xffffffff]])).run(new Uint8Array(0), 0, 0, 0), 0xffffffff);
  });
});

describe('BpfProgram fuzz', () => {
  test('100k random, mutated and truncated frames never throw', () => {
    const programs = ['tcp[tcpflags] & tcp-syn != 0', 'vlan and udp', 'ip6 and tcp', 'udp portrange 10000-20000', 'ip[ip[0] & 0xf] = 0'].map(
      (f) => new BpfProgram(compileFilter(f, SNAPLEN, 1), f),
    );
    // Indexed loads at frame-controlled offsets, division and shifts by frame bytes.
    const wild = new BpfProgram(
      assemble([
        [LD_B_ABS, 0, 0, 0],
        [TAX, 0, 0, 0],
        [LD_B_IND, 0, 0, 0],
        [ST, 0, 0, 0],
        [LDX_MSH, 0, 0, 1],
        [LD_W_IND, 0, 0, 2],
        [LDX_MEM, 0, 0, 0],
        [ALU(DIV, true), 0, 0, 0],
        [ALU(LSH, true), 0, 0, 0],
        [ALU(MOD, true), 0, 0, 0],
        [RET_A, 0, 0, 0],
      ]),
    );
    const rand = rng(42);
    const ether = ethernetFrames();
    const buf = new Uint8Array(2048);
    let accepted = 0;
    for (let i = 0; i < 100_000; i++) {
      const off = Math.floor(rand() * 16);
      let caplen: number;
      if (i % 2 === 0) {
        caplen = Math.floor(rand() * 200);
        for (let j = 0; j < caplen; j++) buf[off + j] = rand() * 256;
      } else {
        const f = ether[i % ether.length]!;
        buf.set(f.buf.subarray(f.off, f.off + Math.min(f.caplen, buf.length - off)), off);
        buf[off + Math.floor(rand() * 64)] = rand() * 256;
        caplen = Math.floor(rand() * (f.caplen + 1));
      }
      const len = caplen + Math.floor(rand() * 100);
      for (const p of programs) {
        const v = p.run(buf, off, caplen, len);
        assert.ok(v === 0 || v === SNAPLEN);
        if (v) accepted++;
      }
      const v = wild.run(buf, off, caplen + (i % 7 === 0 ? 5000 : 0), len);
      assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
    }
    assert.ok(accepted > 1000, `only ${accepted} accepts: the fuzz barely reaches the transport headers`);
  });
});

// Frame-by-frame comparison of `otus decode` NDJSON with tshark's expectations
// (tshark.ts). The rules, each with its reason:
//
//  1. Frames are paired by number; a frame only one side has is a mismatch on
//     key `frame`.
//  2. ts, caplen and len are always compared: they come from the capture
//     record, not from dissection, so no decoding problem excuses them.
//  3. Any other key is compared only where tshark gives a value, and only on
//     frames tshark does not mark malformed (`_ws.malformed`, or an expert
//     item of severity error outside an ICMP-quoted packet): past a
//     dissection error tshark's later fields are guesses, and otus by
//     contract stops at its first error.
//  4. payload_len is compared only when caplen == len: otus counts bytes
//     present, tshark's udp.length/tcp.len count what was on the wire.
//  5. Fields inside ICMP/ICMPv6-quoted packets are never compared: tshark.ts
//     does not read them (the contract does not decode them).
//
// Per-file known differences (keys, optionally limited to some frames, with
// a reason) are filtered out here, and one that no longer occurs is reported
// as stale, so the list cannot outlive the bug it excuses.

import { KEYS, RECORD_KEYS, type Key, type TsharkFrame, type Value } from './tshark.js';

/** One line of `otus decode` output (docs/decode-output.md). */
export interface OtusRecord {
  frame: number;
  ts: string | null;
  caplen: number;
  len: number;
  src_mac: string | null;
  dst_mac: string | null;
  vlans: number[];
  tunnel: { type: string; vni: number | null; key: number | null; outer_src: string | null; outer_dst: string | null } | null;
  ip_version: number | null;
  src: string | null;
  dst: string | null;
  proto: number | null;
  ttl: number | null;
  fragmented: boolean;
  reassembly: string | null;
  sport: number | null;
  dport: number | null;
  tcp_flags: number | null;
  payload_len: number | null;
  error: string | null;
  [k: string]: unknown;
}

export interface Mismatch {
  file: string;
  frame: number;
  key: Key | 'frame';
  otus: unknown;
  tshark: unknown;
}

export interface KnownDifference {
  keys: readonly (Key | 'frame')[];
  /** Frames it applies to; all frames when absent. */
  frames?: number[];
  /** One line: why otus and tshark differ here, and who is right. */
  reason: string;
}

export interface CompareResult {
  mismatches: Mismatch[];
  /** Known differences that matched no mismatch. */
  stale: KnownDifference[];
  frames: number;
  /** Key comparisons made (a check that the comparison compared something). */
  compared: number;
  /** Frames skipped (except record keys) because tshark marks them malformed. */
  malformed: number;
}

/** Parses NDJSON text into records (blank lines ignored). */
export function parseNdjson(text: string): OtusRecord[] {
  const out: OtusRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(JSON.parse(line) as OtusRecord);
  }
  return out;
}

/**
 * ISO 8601 UTC ("2003-06-11T00:06:08.793044Z") to "seconds.nanoseconds"
 * since the epoch, as tshark's frame.time_epoch; null stays null.
 */
export function isoToEpochNs(iso: string | null): string | null {
  if (iso === null) return null;
  const m = /^(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$/.exec(iso);
  if (!m) return `unparsable:${iso}`;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  const sec = Math.floor(ms / 1000);
  return `${sec}.${(m[7] ?? '').padEnd(9, '0')}`;
}

/** The otus value that key `k` names, in the form tshark.ts produces. */
export function otusValue(r: OtusRecord, k: Key): unknown {
  switch (k) {
    case 'ts': return isoToEpochNs(r.ts);
    case 'tunnel': return r.tunnel;
    case 'tunnel.type': return r.tunnel ? r.tunnel.type : null;
    case 'tunnel.vni': return r.tunnel ? r.tunnel.vni : null;
    case 'tunnel.key': return r.tunnel ? r.tunnel.key : null;
    case 'tunnel.outer_src': return r.tunnel ? r.tunnel.outer_src : null;
    case 'tunnel.outer_dst': return r.tunnel ? r.tunnel.outer_dst : null;
    default: return r[k];
  }
}

function same(a: unknown, b: Value): boolean {
  if (Array.isArray(b)) {
    return Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  return a === b;
}

function isKnown(m: Mismatch, known: readonly KnownDifference[], used: Set<KnownDifference>): boolean {
  for (const k of known) {
    if (!k.keys.includes(m.key)) continue;
    if (k.frames && !k.frames.includes(m.frame)) continue;
    used.add(k);
    return true;
  }
  return false;
}

export function compare(
  file: string,
  otus: readonly OtusRecord[],
  tshark: readonly TsharkFrame[],
  known: readonly KnownDifference[] = [],
): CompareResult {
  const all: Mismatch[] = [];
  const byFrame = new Map<number, OtusRecord>();
  for (const r of otus) byFrame.set(r.frame, r);
  let malformed = 0;
  let compared = 0;
  const seen = new Set<number>();
  for (const t of tshark) {
    seen.add(t.frame);
    const r = byFrame.get(t.frame);
    if (!r) {
      all.push({ file, frame: t.frame, key: 'frame', otus: null, tshark: t.frame });
      continue;
    }
    if (t.malformed !== null) malformed++;
    const wholeFrame = r.caplen === r.len;
    for (const k of KEYS) {
      if (!(k in t.exp)) continue; // rule 3: tshark gives no value
      if (t.malformed !== null && !RECORD_KEYS.includes(k)) continue; // rule 3
      if (k === 'payload_len' && !wholeFrame) continue; // rule 4
      const want = t.exp[k] as Value;
      const got = otusValue(r, k);
      compared++;
      if (!same(got, want)) all.push({ file, frame: t.frame, key: k, otus: got, tshark: want });
    }
  }
  for (const r of otus) {
    if (!seen.has(r.frame)) all.push({ file, frame: r.frame, key: 'frame', otus: r.frame, tshark: null });
  }
  const used = new Set<KnownDifference>();
  const mismatches = all.filter((m) => !isKnown(m, known, used));
  return { mismatches, stale: known.filter((k) => !used.has(k)), frames: tshark.length, compared, malformed };
}

/** "key: otus=… tshark=…" lines, at most `max` per key, for messages and reports. */
export function formatMismatches(ms: readonly Mismatch[], max = 3): string {
  const byKey = new Map<string, Mismatch[]>();
  for (const m of ms) {
    const list = byKey.get(m.key) ?? [];
    list.push(m);
    byKey.set(m.key, list);
  }
  const lines: string[] = [];
  for (const [key, list] of byKey) {
    lines.push(`  ${key}: ${list.length} frame(s)`);
    for (const m of list.slice(0, max)) {
      lines.push(`    ${m.file} frame ${m.frame}: otus=${JSON.stringify(m.otus)} tshark=${JSON.stringify(m.tshark)}`);
    }
  }
  return lines.join('\n');
}

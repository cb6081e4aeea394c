// Live-capture test hosts: a network namespace and a veth pair whose root-side
// end the test captures on, while traffic is replayed (tcpreplay) onto the
// end inside the namespace. Also synthetic frames and a pcap writer/reader.

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCapture } from '../../src/capture-file/open.js';

/** Why live tests cannot run here, or null. */
export function liveSkipReason(): string | null {
  if (process.getuid?.() !== 0) return `needs root: AF_PACKET sockets and ip netns (running as uid ${process.getuid?.()})`;
  for (const tool of ['ip', 'tcpreplay', 'tcpdump']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (scripts/setup.sh --test installs it)`;
  }
  return null;
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Deletes namespaces left by an earlier, killed test process (their veth pairs go with them); a live one's stay, so test runs may overlap. */
export function removeStaleNamespaces(): void {
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const m = /^otus-t-(?:(\d+)-)?[0-9a-f]+\b/.exec(line);
    if (m === null) continue;
    const pid = Number(m[1] ?? 0);
    if (pid > 0 && pidAlive(pid)) continue;
    spawnSync('ip', ['netns', 'del', m[0]]);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface VethHost {
  ns: string;
  /** Root-namespace end: capture here. */
  capIf: string;
  /** End inside `ns`: send here. */
  sendIf: string;
  /** Replays a pcap onto sendIf as fast as it can; resolves when tcpreplay is done. */
  replay(file: string, extra?: string[]): void;
  /** Starts tcpreplay onto sendIf in the background (`extra`: e.g. --pps N instead of top speed); the caller waits for or kills it. */
  startReplay(file: string, extra: string[]): ChildProcess;
  /** Deletes the pair and its namespace and makes them again under the same names (the capture end gets a new ifindex). */
  recreate(): void;
  destroy(): void;
}

function noIpv6(procRoot: string, ifname: string): string {
  return `${procRoot}/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
}

/** A veth pair, one end in a fresh namespace; IPv6 off on both so the kernels send nothing of their own. */
export function makeVethHost(): VethHost {
  const id = randomBytes(3).toString('hex');
  const ns = `otus-t-${process.pid}-${id}`;
  const capIf = `ot${id}a`;
  const sendIf = `ot${id}b`;
  const create = (): void => {
    run('ip', ['netns', 'add', ns]);
    try {
      run('ip', ['link', 'add', capIf, 'type', 'veth', 'peer', 'name', sendIf, 'netns', ns]);
      try {
        writeFileSync(noIpv6('/proc', capIf), '1');
      } catch {
        // IPv6 not built in: nothing to silence
      }
      spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', `echo 1 > ${noIpv6('/proc', sendIf)}`]);
      run('ip', ['link', 'set', capIf, 'up']);
      run('ip', ['-n', ns, 'link', 'set', sendIf, 'up']);
    } catch (err) {
      spawnSync('ip', ['netns', 'del', ns]);
      throw err;
    }
  };
  const destroy = (): void => {
    spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['link', 'del', capIf]); // normally gone with the namespace
  };
  create();
  return {
    ns,
    capIf,
    sendIf,
    replay(file: string, extra: string[] = []): void {
      run('ip', ['netns', 'exec', ns, 'tcpreplay', '-q', '-i', sendIf, '--topspeed', ...extra, file]);
    },
    startReplay(file: string, extra: string[]): ChildProcess {
      return spawn('ip', ['netns', 'exec', ns, 'tcpreplay', '-q', '-i', sendIf, ...extra, file], { stdio: 'ignore' });
    },
    recreate(): void {
      destroy();
      // A namespace's devices go on the kernel's cleanup work: the name is free once the old device is gone.
      const nap = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 500 && existsSync(`/sys/class/net/${capIf}`); i++) Atomics.wait(nap, 0, 0, 10);
      create();
    },
    destroy,
  };
}

// ------------------------------------------------------------- frames

export interface Flow {
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  proto?: 6 | 17;
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

/** Ethernet + IPv4 + UDP/TCP frame with `payloadLen` bytes of payload (pattern seeded by `seed`). */
export function ipv4Frame(f: Flow, payloadLen: number, seed = 0, opts: { vlan?: number; id?: number; fragOff?: number; more?: boolean } = {}): Uint8Array {
  const proto = f.proto ?? 17;
  const l4 = proto === 17 ? 8 : 20;
  const ipLen = 20 + l4 + payloadLen;
  const vl = opts.vlan !== undefined ? 4 : 0;
  const b = new Uint8Array(14 + vl + ipLen);
  const v = new DataView(b.buffer);
  b.set(MAC_B, 0);
  b.set(MAC_A, 6);
  if (vl) {
    v.setUint16(12, 0x8100);
    v.setUint16(14, opts.vlan!);
  }
  v.setUint16(12 + vl, 0x0800);
  const ip = 14 + vl;
  b[ip] = 0x45;
  v.setUint16(ip + 2, ipLen);
  v.setUint16(ip + 4, opts.id ?? seed & 0xffff);
  v.setUint16(ip + 6, ((opts.more ? 1 : 0) << 13) | ((opts.fragOff ?? 0) >> 3));
  b[ip + 8] = 64;
  b[ip + 9] = proto;
  b.set(f.src, ip + 12);
  b.set(f.dst, ip + 16);
  const t = ip + 20;
  v.setUint16(t, f.sport);
  v.setUint16(t + 2, f.dport);
  if (proto === 17) v.setUint16(t + 4, 8 + payloadLen);
  else {
    b[t + 12] = 0x50;
    b[t + 13] = 0x18;
  }
  for (let i = 0; i < payloadLen; i++) b[t + l4 + i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

/** Ethernet + IPv6 + UDP frame. */
export function ipv6Frame(sport: number, dport: number, payloadLen: number, seed = 0): Uint8Array {
  const b = new Uint8Array(14 + 40 + 8 + payloadLen);
  const v = new DataView(b.buffer);
  b.set(MAC_B, 0);
  b.set(MAC_A, 6);
  v.setUint16(12, 0x86dd);
  b[14] = 0x60;
  v.setUint16(18, 8 + payloadLen);
  b[20] = 17;
  b[21] = 64;
  b[22] = 0x20;
  b[23] = 0x01;
  b[37] = 1;
  b[38] = 0x20;
  b[39] = 0x01;
  b[53] = 2;
  v.setUint16(54, sport);
  v.setUint16(56, dport);
  v.setUint16(58, 8 + payloadLen);
  for (let i = 0; i < payloadLen; i++) b[62 + i] = (seed + i) & 0xff;
  return b;
}

/** Classic little-endian microsecond pcap, LINKTYPE_ETHERNET; frame i at `usAt(i)` µs after the first (default: 1 ms apart). */
export function writePcap(path: string, frames: Uint8Array[], usAt: (i: number) => number = (i) => i * 1000): void {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(1, 20);
  parts.push(gh);
  frames.forEach((f, i) => {
    const h = Buffer.alloc(16);
    const us = Math.round(usAt(i));
    h.writeUInt32LE(1_700_000_000 + Math.floor(us / 1e6), 0);
    h.writeUInt32LE(us % 1e6, 4);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    parts.push(h, Buffer.from(f));
  });
  writeFileSync(path, Buffer.concat(parts));
}

/** Every frame of a capture file, copied out. */
export function readFrames(path: string): Uint8Array[] {
  const r = openCapture(path);
  const out: Uint8Array[] = [];
  while (r.next()) out.push(r.frame.buf.slice(r.frame.off, r.frame.off + r.frame.caplen));
  return out;
}

/** Frames of `file` that libpcap's offline filter passes (the oracle for kernel filtering). */
export function tcpdumpFilter(file: string, filter: string, dir: string): Uint8Array[] {
  const out = join(dir, `filtered-${randomBytes(4).toString('hex')}.pcap`);
  run('tcpdump', ['-r', file, '-w', out, filter]);
  return readFrames(out);
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'otus-live-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Polls `cond` every 20 ms (letting the event loop run) until it holds or `ms` pass. */
/** waitFor for a condition that must be asked asynchronously (a control-socket call, an HTTP scrape). */
export async function waitForAsync(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function waitFor(cond: () => boolean, ms = 10000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function mapLines(): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').length;
}

// ------------------------------------------------------------- two hosts

export interface NetnsHost {
  ns: string;
  /** The veth end inside `ns`. */
  ifname: string;
  ip: string;
}

export interface NetnsPair {
  a: NetnsHost;
  b: NetnsHost;
  destroy(): void;
}

const PAIR_PREFIX = 'otus-p-';

/**
 * Deletes namespaces of makeNetnsPair whose creating process is gone. Their names
 * carry the creator's pid, so a concurrent run (another test file, another checkout)
 * keeps its own; removeStaleNamespaces, by contrast, deletes every otus-t-* one.
 */
export function removeOrphanPairNamespaces(): void {
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^otus-p-(\d+)-/.exec(name);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) spawnSync('ip', ['netns', 'del', name]);
  }
}

/**
 * Two hosts: namespaces `a` and `b` joined by a veth pair, addresses ipA and ipB
 * (a /24), loopback up, IPv6 off in both (so the kernels send nothing of their own),
 * MTU 1500. Capture on b.ifname inside b to see both directions.
 */
export function makeNetnsPair(ipA: string, ipB: string): NetnsPair {
  const id = randomBytes(3).toString('hex');
  const a: NetnsHost = { ns: `${PAIR_PREFIX}${process.pid}-${id}a`, ifname: `op${id}a`, ip: ipA };
  const b: NetnsHost = { ns: `${PAIR_PREFIX}${process.pid}-${id}b`, ifname: `op${id}b`, ip: ipB };
  const destroy = (): void => {
    for (const h of [a, b]) spawnSync('ip', ['netns', 'del', h.ns]); // the veth pair goes with them
  };
  try {
    for (const h of [a, b]) {
      run('ip', ['netns', 'add', h.ns]);
      run('ip', ['netns', 'exec', h.ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
    }
    run('ip', ['link', 'add', a.ifname, 'netns', a.ns, 'mtu', '1500', 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns, 'mtu', '1500']);
    for (const h of [a, b]) {
      run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', h.ifname]);
      run('ip', ['-n', h.ns, 'link', 'set', h.ifname, 'up']);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return { a, b, destroy };
}

// Network interfaces as the kernel describes them in /sys/class/net (of the
// caller's network namespace), and the CPUs this process may run on.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import { OtusError } from '../util/errors.js';

export interface InterfaceInfo {
  name: string;
  ifindex: number;
  /** ARPHRD_* */
  type: number;
  loopback: boolean;
  /** LINKTYPE_* of frames read from an AF_PACKET SOCK_RAW socket on it. */
  linkType: number;
  /** DLT_* libpcap compiles filters for. */
  dlt: number;
  /** RX queues (AF_XDP binds one socket per queue). */
  rxQueues: number;
}

const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;
const ARPHRD_NONE = 65534;

export function interfaceInfo(name: string): InterfaceInfo {
  if (!/^[^/\s]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `interface "${name}": not a valid interface name`);
  }
  let ifindex: number;
  let type: number;
  try {
    ifindex = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'));
    type = Number(readFileSync(`/sys/class/net/${name}/type`, 'utf8'));
  } catch {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `interface "${name}": no such interface in this network namespace (see ip link)`);
  }
  let linkType: number;
  let dlt: number;
  if (type === ARPHRD_ETHER || type === ARPHRD_LOOPBACK) {
    linkType = 1; // LINKTYPE_ETHERNET
    dlt = 1; // DLT_EN10MB
  } else if (type === ARPHRD_NONE) {
    linkType = 101; // LINKTYPE_RAW (tun devices: frames start at the IP header)
    dlt = 12; // DLT_RAW on Linux
  } else {
    throw new OtusError('OTUS_ERR_UNSUPPORTED', `interface "${name}": link type ARPHRD ${type} is not supported (Ethernet, loopback and raw-IP devices are)`);
  }
  let rxQueues = 1;
  try {
    rxQueues = Math.max(1, readdirSync(`/sys/class/net/${name}/queues`).filter((q) => q.startsWith('rx-')).length);
  } catch {
    // no queue directory: one queue
  }
  return { name, ifindex, type, loopback: type === ARPHRD_LOOPBACK, linkType, dlt, rxQueues };
}

const IFF_UP = 0x1;

/**
 * Whether interface `name` exists and is administratively up (IFF_UP in
 * /sys/class/net/NAME/flags): a capture process whose socket failed asks,
 * and waits while it is `down` or `gone` (src/capture-proc/live.ts).
 */
export function interfaceState(name: string): 'up' | 'down' | 'gone' {
  try {
    return (parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8'), 16) & IFF_UP) !== 0 ? 'up' : 'down';
  } catch {
    return 'gone';
  }
}

/** The interface's index, -1 when it is gone: a new index under the same name is another device (deleted and made again). */
export function interfaceIndex(name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'));
  } catch {
    return -1;
  }
}

/**
 * Why `iface` carries this host's own traffic, or null: it is the loopback,
 * has an address other than a link-local one, or is a port of a bridge or
 * bond (its frames belong to the master). A mirror port has none of these.
 */
export function hostTraffic(iface: InterfaceInfo): string | null {
  if (iface.loopback) return 'it is the loopback';
  const addrs = (networkInterfaces()[iface.name] ?? []).filter((a) => !(a.family === 'IPv6' ? /^fe[89ab]/i.test(a.address) : a.address.startsWith('169.254.')));
  if (addrs.length > 0) return `it has address ${addrs.map((a) => a.address).join(', ')}`;
  try {
    return `it is a port of ${basename(readlinkSync(`/sys/class/net/${iface.name}/master`))}`;
  } catch {
    return null; // no master
  }
}

/** CAP_NET_RAW: AF_PACKET sockets (af_packet_v3, and libpcap's live capture). */
export const CAP_NET_RAW = 13;

/** Whether this process has capability `cap` in its effective set (CapEff in /proc/self/status); true where that cannot be read. */
export function hasCapability(cap: number): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return ((BigInt(`0x${m[1]}`) >> BigInt(cap)) & 1n) === 1n;
  } catch {
    // not Linux procfs: let the socket call say
  }
  return true;
}

/** Throws OTUS_ERR_PERMISSION, before any socket is opened, when this process may not capture (`what`: the driver and interface). */
export function checkCaptureAllowed(what: string): void {
  if (hasCapability(CAP_NET_RAW)) return;
  throw new OtusError('OTUS_ERR_PERMISSION', `${what}: live capture needs root or CAP_NET_RAW (this process, uid ${process.getuid?.()}, has neither)`);
}

/** CPUs this process may run on (Cpus_allowed_list of /proc/self/status), ascending. */
export function allowedCpus(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) {
      const out: number[] = [];
      for (const part of m[1]!.split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a!; c <= (b ?? a!); c++) out.push(c);
      }
      if (out.length) return out;
    }
  } catch {
    // not Linux procfs: fall through
  }
  return [0];
}

/** The CPU stream `index` pins to under "auto": stream index over the allowed CPUs. */
export function autoCpu(index: number, cpus: number[] = allowedCpus()): number {
  return cpus[index % cpus.length]!;
}

/**
 * Capture processes are one per CPU at most: each is pinned to one, and more
 * than the CPUs this process may run on only contend (and hundreds of forks
 * exhaust the machine). Throws OTUS_ERR_BAD_ARGUMENT naming the limit.
 */
export function checkWorkers(workers: number, what = '--workers', cpus: number[] = allowedCpus()): void {
  if (workers > cpus.length) {
    throw new OtusError(
      'OTUS_ERR_BAD_ARGUMENT',
      `${what} ${workers}: at most ${cpus.length}, one capture process per CPU this process may run on (CPUs ${cpuList(cpus)}; Cpus_allowed_list in /proc/self/status)`,
    );
  }
}

/**
 * Every CPU in `cpus` must be one this process may run on: pinning to another
 * fails in the capture process (sched_setaffinity: EINVAL). Throws
 * OTUS_ERR_BAD_ARGUMENT naming `what` (the option or key) and the CPUs allowed.
 */
export function checkCpus(cpus: number[], what: string, mask: number[] = allowedCpus()): void {
  const bad = cpus.filter((c) => c >= 0 && !mask.includes(c));
  if (bad.length === 0) return;
  throw new OtusError(
    'OTUS_ERR_BAD_ARGUMENT',
    `${what}: CPU ${[...new Set(bad)].join(', ')} is not one this process may run on (CPUs ${cpuList(mask)}; Cpus_allowed_list in /proc/self/status)`,
  );
}

/** 0-3,6 */
function cpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j > i ? `${cpus[i]}-${cpus[j]}` : `${cpus[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** How `--cpus` pins: 'auto' (autoCpu), 'off', or a list of CPUs taken in turn. */
export type CpuChoice = 'auto' | 'off' | number[];

/** The CPU capture process `index` pins to under `choice`, -1 for none. */
export function cpuFor(choice: CpuChoice, index: number, allowed: number[]): number {
  if (choice === 'off') return -1;
  if (choice === 'auto') return autoCpu(index, allowed);
  return choice[index % choice.length]!;
}

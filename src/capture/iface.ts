// Network interfaces as the kernel describes them in /sys/class/net (of the
// caller's network namespace), and the CPUs this process may run on.

import { readFileSync, readdirSync } from 'node:fs';
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

// Flow registry lookup benchmark, one process: ns per lookup for hits and
// misses (IPv4 endpoint, IPv6 endpoint, IPv4 five-tuple), GC counts.
//
//   node --expose-gc dist/bench/registry.js [--capacity N] [--fill F] [--active N] [--lookups N]

import { benchArgs, int, opt, positive, uint } from './cli.js';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { native } from '../src/native.js';
import { FlowKey, FlowRegistry } from '../src/shm/registry.js';

const { capacity, fill, active, lookups } = benchArgs({
  capacity: opt(65536, int),
  fill: opt(0.5, positive),
  // keys cycled through by the lookups: the active calls' working set (0: all registered)
  active: opt(0, uint),
  lookups: opt(20_000_000, int),
});

let gcs = 0;
new PerformanceObserver((l) => {
  gcs += l.getEntries().length;
}).observe({ entryTypes: ['gc'] });

const reg = FlowRegistry.create(`bench${process.pid}`, { capacity });
const n = Math.floor(capacity * fill);
const key = new FlowKey();
const ips = new Int32Array(n);
const ports = new Int32Array(n);
const v6 = new Uint8Array(16 * n);
for (let i = 0; i < n; i++) {
  ips[i] = (0x0a000000 + i * 7919) | 0;
  ports[i] = 10000 + (i % 50000);
  v6.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, (i >>> 24) & 0xff, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff], 16 * i);
}
// a third each: IPv4 endpoints, IPv6 endpoints, IPv4 five-tuples (peer 192.0.2.1:5004)
const third = Math.floor(n / 3);
for (let i = 0; i < third; i++) {
  reg.register(key.endpoint4(ips[i], ports[i]), { callId: `call-${i}@example.org`, codec: 'PCMA' }, 3_600_000);
  reg.register(key.endpoint6(v6, 16 * i, ports[i]), { callId: `call6-${i}@example.org`, codec: 'opus' }, 3_600_000);
  const w = key.endpoint4(ips[i], ports[i]).w;
  w[0] = 3 | (17 << 8);
  w[1] = (ports[i] << 16) | 5004;
  w[6] = 0xc0000201 | 0;
  // normalise as FlowKey.flow does: lower address first
  if (ips[i] >>> 0 > 0xc0000201) {
    w[6] = ips[i];
    w[2] = 0xc0000201 | 0;
    w[1] = (5004 << 16) | ports[i];
  }
  reg.register(key, { callId: `flow-${i}`, codec: 'G722' }, 3_600_000);
}
reg.setNow(Date.now());

let sink = 0;
function run(kind: number, hit: boolean, count: number): number {
  const mask = active > 0 ? Math.min(active, third) : third;
  const t0 = native.threadCpuNs(); // CPU time: the machine may be shared
  for (let j = 0, i = 0; j < count; j++) {
    let s: number;
    const port = hit ? ports[i] : ports[i] + 1;
    if (kind === 0) s = reg.lookupEndpoint4(ips[i], port);
    else if (kind === 1) s = reg.lookupEndpoint6(v6, 16 * i, port);
    else s = reg.lookupFlow4(0xc0000201 | 0, ips[i], 5004, port, 17);
    sink = (sink + s) | 0;
    if (++i === mask) i = 0;
  }
  return (native.threadCpuNs() - t0) / count;
}

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}, load ${os.loadavg()[0].toFixed(1)}`);
console.log(`command: node ${process.execArgv.join(' ')} ${process.argv.slice(1).join(' ')}`.replace(/\s+/g, ' '));
console.log(`lookups cycle over ${active > 0 ? Math.min(active, third) : third} keys of each kind; ns are thread CPU time`);
console.log(`registry: ${reg.capacity} slots, ${reg.stats().live} live (${third} each of IPv4 endpoint, IPv6 endpoint, IPv4 five-tuple), evictions ${reg.stats().evictions}`);
await new Promise((r) => setTimeout(r, 50)); // let GC entries from the setup arrive first
const names = ['IPv4 endpoint', 'IPv6 endpoint', 'IPv4 five-tuple'];
for (let k = 0; k < 3; k++) {
  run(k, true, 2_000_000);
  run(k, false, 2_000_000); // warm up
  const g0 = gcs;
  const hit = run(k, true, lookups);
  const miss = run(k, false, lookups);
  await new Promise((r) => setTimeout(r, 50));
  console.log(`${names[k]}: hit ${hit.toFixed(1)} ns, miss ${miss.toFixed(1)} ns per lookup, GCs during ${2 * lookups} lookups: ${gcs - g0}`);
}
console.log(`(checksum ${sink})`);
reg.close();

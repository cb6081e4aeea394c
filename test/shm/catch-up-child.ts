// Another capture process of a live task, for the catch-up tests (forked; not a test).
//   node catch-up-child.js TASK BASE_MS MODE DELAY_MS
// Opens the task's flow registry and capture clock as capture process 1,
// says {ready}, then by MODE:
//   register  after DELAY_MS registers 192.0.2.77:40000 (the SDP it read)
//             and publishes its position: now
//   idle      publishes nothing (a quiet fanout member)
// and stays until killed.

import { CaptureClock } from '../../src/shm/capture-clock.js';
import { FlowKey, FlowRegistry } from '../../src/shm/registry.js';

const [task, baseArg, mode, delayArg] = process.argv.slice(2);
const reg = FlowRegistry.open(task);
const clock = CaptureClock.open(task);
process.send!({ ready: true });
if (mode === 'register') {
  setTimeout(() => {
    reg.register(new FlowKey().endpoint('192.0.2.77', 40000), { callId: 'late@x', codec: 'PCMA' }, 10_000);
    clock.at(1, (Date.now() - Number(baseArg)) * 1000);
  }, Number(delayArg));
}
setInterval(() => undefined, 1000);

// A process holding a slot of a task's stats segment for the stats tests (forked; not a test).
//   node stats-child.js SCOPE SLOT create|write
// create: makes the segment (its owner), says {created}, and waits to be killed.
// write: takes SLOT, reports what it found there ({base}), then for each
// message {counters, gauges} publishes them and answers {published}.

import { StatsSegment, StatsWriter } from '../../src/shm/stats.js';

const [scope, slotArg, mode] = process.argv.slice(2);
if (mode === 'create') {
  StatsSegment.create(scope!, 4);
  process.send!({ created: true });
  setInterval(() => undefined, 1000);
} else {
  const w = StatsWriter.open(scope!, Number(slotArg));
  process.send!({ base: Array.from(w.base.subarray(0, 8)) });
  process.on('message', (m: { counters: Record<string, number>; gauges: Record<string, number> }) => {
    w.publish(m.counters, m.gauges);
    process.send!({ published: true });
  });
}

// A process holding a slot of a task's stats segment for the stats tests (forked; not a test).
//   node stats-child.js SCOPE SLOT create|write|spin
// create: makes the segment (its owner), says {created}, and waits to be killed.
// write: takes SLOT, reports what it found there ({base}), then for each
// message {counters, gauges} publishes them and answers {published}.
// spin: takes SLOT and, until killed, copies 256 counters that are always
// equal (as a capture process copies frames and what became of them), one
// store after the other, bracketed by begin() and end(), 20 µs apart.

import { StatsSegment, StatsWriter } from '../../src/shm/stats.js';

const [scope, slotArg, mode] = process.argv.slice(2);
if (mode === 'create') {
  StatsSegment.create(scope!, 4);
  process.send!({ created: true });
  setInterval(() => undefined, 1000);
} else if (mode === 'spin') {
  const w = StatsWriter.open(scope!, Number(slotArg));
  const ids = Array.from({ length: 256 }, (_, k) => w.id(`c${k}`));
  process.send!({ spinning: true });
  for (let i = 1; ; i++) {
    w.begin();
    for (const id of ids) w.count(id, i);
    w.end();
    // The next copy 20 µs later: a busy capture process copies at every batch, some tens of µs apart.
    const t = performance.now() + 0.02;
    while (performance.now() < t);
  }
} else {
  const w = StatsWriter.open(scope!, Number(slotArg));
  process.send!({ base: Array.from(w.base.subarray(0, 8)) });
  process.on('message', (m: { counters: Record<string, number>; gauges: Record<string, number> }) => {
    w.publish(m.counters, m.gauges);
    process.send!({ published: true });
  });
}

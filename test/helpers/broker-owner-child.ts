// Starts a broker (test/helpers/kafka.ts) and prints its state directory,
// then waits to be killed: test/kafka/owner.test.ts checks the broker goes
// with it.

import { startBroker } from './kafka.js';

const b = startBroker();
process.stdout.write(JSON.stringify({ state: b.state }) + '\n');
setInterval(() => undefined, 1 << 30);

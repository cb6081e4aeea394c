// A HEP collector over TCP, as its own process so a test can kill it:
// `node hep-receiver.js PORT [PAUSE_AFTER]` listens on 127.0.0.1:PORT,
// prints `listening`, then one JSON line per packet decoded by hep-js
// (test/helpers/hep.ts) and its raw bytes in hex; after PAUSE_AFTER packets
// it stops reading (the sender's socket then fills) and prints `paused`.

import { createServer } from 'node:net';
import { HepStream, hepJsDecoder } from './hep.js';

const port = Number(process.argv[2]);
const pauseAfter = process.argv[3] !== undefined ? Number(process.argv[3]) : Infinity;
const decode = hepJsDecoder();
let n = 0;

const server = createServer((sock) => {
  const frames = new HepStream();
  sock.on('error', () => undefined);
  sock.on('data', (data: Buffer) => {
    for (const p of frames.push(data)) {
      const d = decode(p);
      process.stdout.write(JSON.stringify({ d, hex: p.toString('hex') }) + '\n');
      if (++n === pauseAfter) {
        sock.pause();
        process.stdout.write('paused\n');
        return;
      }
    }
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));

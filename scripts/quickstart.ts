// `npm start`: the main job on an embedded default, no external service.
// Captures on the loopback interface (af_packet_v3) for a few seconds while
// sending itself a handful of SIP OPTIONS requests over UDP, so there is
// something to see; prints the decoded frames and the capture statistics.
// Needs root (or CAP_NET_RAW) for the capture socket.

import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';

const OTUS = fileURLToPath(new URL('../src/cli/otus.js', import.meta.url));
const capture = spawn(process.execPath, [OTUS, 'capture', '-i', 'lo', '--count', '10', '--duration', '5'], { stdio: ['ignore', 'inherit', 'pipe'] });

let started = false;
capture.stderr.setEncoding('utf8');
capture.stderr.on('data', (text: string) => {
  process.stderr.write(text);
  if (!started && text.includes('capturing')) {
    started = true;
    sendOptions();
  }
});
capture.on('exit', (code) => process.exit(code ?? 1));

function sendOptions(): void {
  const sock = createSocket('udp4');
  let i = 0;
  const timer = setInterval(() => {
    const msg =
      `OPTIONS sip:otus@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-${i}\r\n` +
      `From: <sip:demo@127.0.0.1>;tag=${i}\r\nTo: <sip:otus@127.0.0.1>\r\nCall-ID: quickstart-${i}\r\nCSeq: ${i + 1} OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    sock.send(msg, 5060, '127.0.0.1');
    if (++i === 5) {
      clearInterval(timer);
      setTimeout(() => sock.close(), 100);
    }
  }, 200);
}

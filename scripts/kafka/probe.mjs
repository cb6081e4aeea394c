// Helpers for scripts/kafka.sh, in Node because the project needs it anyway:
//   node probe.mjs ports N          N free loopback TCP ports, one per line
//   node probe.mjs answers PORT     exit 0 when a Kafka broker on 127.0.0.1:PORT
//                                   answers an ApiVersions request (it does so only
//                                   once it is registered and unfenced), else 1
import net from 'node:net';

const [cmd, arg] = process.argv.slice(2);

async function freePorts(n) {
  // Hold every socket until all are bound, so the N ports differ.
  const servers = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise((res, rej) => s.once('error', rej).listen(0, '127.0.0.1', res));
    servers.push(s);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

function answers(port) {
  // ApiVersions v0: size 10, api key 18, version 0, correlation id 7, null client id.
  const req = Buffer.from([0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff]);
  return new Promise((res) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const done = (ok) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write(req));
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      // size, correlation id 7, error code 0
      if (got.length >= 10) done(got.readInt32BE(4) === 7 && got.readInt16BE(8) === 0);
    });
    sock.on('end', () => done(false));
  });
}

if (cmd === 'ports') {
  for (const p of await freePorts(Number(arg))) console.log(p);
} else if (cmd === 'answers') {
  process.exit((await answers(Number(arg))) ? 0 : 1);
} else {
  console.error('usage: probe.mjs ports N | answers PORT');
  process.exit(2);
}

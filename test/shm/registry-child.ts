// A process sharing a flow registry with the registry tests (forked; not a test).
//   node registry-child.js TASK MODE ID KEYS MS
// MODE:
//   writer  re-registers KEYS endpoints for MS ms with contexts of varying length
//           whose last label is a checksum of the rest
//   reader  looks the KEYS endpoints up for MS ms, decodes each hit and checks it;
//           also copies the call-id in place and checks it with stillValid()
//   expirer sets the expiry of KEYS endpoints again and again for MS ms (a BYE's
//           expireIn, with a long TTL so the entries stay)
//   crash   takes the writer lock, leaves a slot half written, and hangs
// Reports {done, ...counts} or {hung}.

import { FlowKey, FlowRegistry } from '../../src/shm/registry.js';
import { contextFor, verifyCallId, verifyContext } from './flows.js';

const [task, mode, idArg, keysArg, msArg] = process.argv.slice(2);
const id = Number(idArg);
const keys = Number(keysArg);
const ms = Number(msArg);
const reg = FlowRegistry.open(task);
const key = new FlowKey();
const send = (m: object): void => {
  process.send?.(m);
};

if (mode === 'writer') {
  const end = Date.now() + ms;
  let writes = 0;
  let failed = 0;
  for (let v = 0; Date.now() < end; v++) {
    for (let k = 0; k < keys; k++) {
      if (reg.register(key.endpoint4(0x0a000000 + k, 10000 + k), contextFor(k, id, v), 60_000) < 0) failed++;
      writes++;
    }
  }
  send({ done: true, writes, failed });
  process.disconnect?.();
} else if (mode === 'expirer') {
  const end = Date.now() + ms;
  let writes = 0;
  while (Date.now() < end) {
    for (let k = 0; k < keys; k++) if (reg.expireIn(key.endpoint4(0x0a000000 + k, 10000 + k), 60_000)) writes++;
  }
  send({ done: true, writes });
  process.disconnect?.();
} else if (mode === 'reader') {
  const end = Date.now() + ms;
  let lookups = 0;
  let hits = 0;
  let torn = 0;
  let changed = 0;
  let inPlace = 0;
  const copy = new Uint8Array(128);
  let firstBad = '';
  while (Date.now() < end) {
    reg.setNow(Date.now());
    for (let k = 0; k < keys; k++) {
      lookups++;
      const slot = reg.lookupEndpoint4(0x0a000000 + k, 10000 + k);
      if (slot < 0) continue;
      hits++;
      // zero-allocation path: copy bytes out in place, then confirm nothing changed
      const off = reg.callIdOffset(slot);
      const n = reg.callIdLength(slot);
      copy.set(reg.u8.subarray(off, off + n));
      if (reg.stillValid(slot)) {
        inPlace++;
        const cid = Buffer.from(copy.buffer, 0, n).toString();
        const bad = verifyCallId(cid, k);
        if (bad !== null) {
          torn++;
          firstBad ||= `in place: ${bad}`;
        }
      }
      const ctx = reg.context(slot);
      if (ctx === null) {
        changed++;
        continue;
      }
      const bad = verifyContext(ctx, k) ?? verifyCallId(ctx.callId, k);
      if (bad !== null) {
        torn++;
        firstBad ||= bad;
      }
    }
  }
  send({ done: true, lookups, hits, torn, changed, inPlace, firstBad });
  process.disconnect?.();
} else if (mode === 'crash') {
  const slot = reg.crashMidWriteForTest(key.endpoint4(0x0a000000, 10000));
  send({ hung: true, slot });
  setInterval(() => {}, 1000);
}

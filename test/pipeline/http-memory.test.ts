// The http parser's memory is bounded, for the process and not only for its
// own count: floods of half-sent HTTP connections through a capture
// process's pipeline (http parser, TCP reassembly with maxBytes), each in a
// process of its own (test/helpers/tcp-flood-child.ts).
//
// http-head: each connection sends a request line and a few headers and no
// end of headers. The reassembler holds those bytes (and evicts for its
// memory, counted); the parser holds nothing for such a connection, where it
// used to allocate two messages of header_max + body_max bytes each.
//
// http-body: each sends a whole header block announcing a body of 1 MB and
// the first 1000 bytes of it: a message in progress that the parser holds.
// Over max_held_bytes the least recently active connections' messages are
// dropped, counted in evicted_memory.
//
// In both, RSS stays within the bounds plus a fixed overhead, and what the
// process keeps after a full GC is the same after 100 000 connections as
// after 300 000 (peaks between GCs hold garbage of whatever age on a busy
// machine and are not compared across flood sizes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECKPOINT, flood, MAX_BYTES, mb, MiB } from '../helpers/tcp-flood.js';

const MAX_HELD = 16 * MiB;
/**
 * The parser's connection objects (stored once a connection has something
 * to remember: here, a request awaiting its response), about 600 bytes
 * each, for at most the reassembler's streams: 55 000 at MAX_BYTES.
 */
const CONNS = 40 * MiB;
/** Beyond the bounds: the V8 heap's slack and what the GC has not collected yet, the pools, code. Measured 9 MiB (http-head) and 62 MiB with the connections (http-body). Before the parser's memory was bounded, http-head took 854 MiB. */
const OVERHEAD = 48 * MiB;

test('a flood of HTTP connections that never end their header block: the parser holds nothing for them, RSS stays within the reassembler bound plus a fixed overhead, and what it keeps does not grow', () => {
  const f = flood('http-head', MAX_HELD);
  const st = f.stats;
  const p = f.parser;
  assert.ok(st.evictedMemory > 3 * CHECKPOINT / 2, `the reassembler's bound was reached (${st.evictedMemory} evicted)`);
  assert.equal(st.bytesHeld > 0, true, 'the reassembler holds the header blocks');
  assert.deepEqual([p.open_connections, p.open_message_bytes_max, p.messages], [0, 0, 0]);
  assert.ok(f.peak - f.base <= MAX_BYTES + OVERHEAD, `RSS ${mb(f.base)} → ${mb(f.peak)}, over ${mb(MAX_BYTES + OVERHEAD)}`);
});

test('a flood of HTTP requests whose bodies never end: messages in progress are dropped over max_held_bytes (counted), RSS stays within the bounds plus a fixed overhead, and what it keeps does not grow', () => {
  const f = flood('http-body', MAX_HELD);
  const p = f.parser;
  assert.ok(p.evicted_memory > 3 * CHECKPOINT / 2, `max_held_bytes was reached (${p.evicted_memory} messages dropped)`);
  assert.ok(p.open_message_bytes <= MAX_HELD, `held ${mb(p.open_message_bytes)}`);
  // Checked after each chunk: at most one chunk's growth (a header block and a body block) over the bound.
  assert.ok(p.open_message_bytes_max <= MAX_HELD + 64 * 1024, `held at most ${mb(p.open_message_bytes_max)}`);
  assert.ok(p.open_messages > 0 && p.open_connections <= f.stats.active, `${p.open_messages} messages, ${p.open_connections} connections (${f.stats.active} streams)`);
  assert.ok(f.peak - f.base <= MAX_BYTES + MAX_HELD + CONNS + OVERHEAD, `RSS ${mb(f.base)} → ${mb(f.peak)}, over ${mb(MAX_BYTES + MAX_HELD + CONNS + OVERHEAD)}`);
});

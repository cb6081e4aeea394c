// Shared by the stream parsers' gap tests (plugins/parser/{sip,http}):
// a fixture capture with frames removed by editcap (a lost segment, as the
// wire loses it), run through one in-process pipeline with the parser and
// flushed at the end, records as JSON; and what tshark makes of the same
// file.

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import { ENCODERS } from '../../src/pipeline/codec.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { MemorySink } from '../../src/pipeline/sink.js';
import type { Parser } from '../../src/plugin/types.js';
import type { TcpReassemblyOptions } from '../../src/reassembly/tcp-stream.js';
import type { JsonRecord } from './parser-golden.js';

/** Why editcap or tshark cannot be used, or null. */
export function wiresharkToolsMissing(): string | null {
  for (const tool of ['editcap', 'tshark']) {
    if (spawnSync(tool, ['--version'], { encoding: 'utf8' }).status !== 0) return `${tool} is not installed (apt-get install tshark)`;
  }
  return null;
}

const dir = mkdtempSync(join(tmpdir(), 'otus-gaps-'));
let made = 0;

/** A copy of `file` without the given frames (1-based, `editcap FILE OUT N...`). */
export function withoutFrames(file: string, frames: readonly (number | string)[]): string {
  const out = join(dir, `edit-${made++}.pcap`);
  const r = spawnSync('editcap', [file, out, ...frames.map(String)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`editcap ${file} ${frames.join(' ')}: ${r.stderr}`);
  return out;
}

/** The file through a pipeline with `parsers` (ended with flush(), as replay ends), its records as JSON. */
export function runParsers(file: string, parsers: Parser[], tcp: Partial<TcpReassemblyOptions> = {}): { records: JsonRecord[]; pipeline: Pipeline } {
  const sink = new MemorySink();
  const pipeline = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers, processors: [], unmatched: 'drop', encode: ENCODERS.json, sink, tcp });
  const r = openCapture(file);
  while (r.next()) pipeline.processFrame(r.frame);
  pipeline.flush();
  const records = sink.records().map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as JsonRecord);
  return { records, pipeline };
}

/** `tshark -T fields` rows (all occurrences, joined by AGG), `|`-separated columns: frame number first, then `fields`. */
export function tsharkRows(file: string, filter: string, fields: string[], extra: string[] = []): string[][] {
  const r = spawnSync('tshark', ['-r', file, ...extra, '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\u001f', '-E', 'separator=|', '-e', 'frame.number', ...fields.flatMap((f) => ['-e', f])], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`tshark failed on ${file}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

/** A record's capture time as join keys spell it: seconds and six fraction digits. */
export function tsKey(ts: string): string {
  const m = /\.(\d+)Z$/.exec(ts);
  return `${Math.floor(Date.parse(ts) / 1000)}${((m ? m[1] : '') + '000000').slice(0, 6)}`;
}

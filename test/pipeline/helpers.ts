// Shared bits of the pipeline tests: paths, a capture read into a pipeline.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../../src/capture-file/open.js';
import { ENCODERS } from '../../src/pipeline/codec.js';
import { Decoder } from '../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { MemorySink } from '../../src/pipeline/sink.js';
import type { Parser, Processor, RecordFormat } from '../../src/plugin/types.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SAMPLE = join(ROOT, 'samples/rtp-g711a.pcap');
export const OTUS = join(ROOT, 'dist/src/cli/otus.js');
export const FIXTURES = join(ROOT, 'test/fixtures/captures');

/** The sample plus every fixture capture. */
export function allCaptures(): string[] {
  return [SAMPLE, ...readdirSync(FIXTURES).filter((f) => /\.(pcap|pcapng)$/.test(f)).sort().map((f) => join(FIXTURES, f))];
}

export function runFile(
  file: string,
  o: { format?: RecordFormat; parsers?: Parser[]; processors?: Processor[]; processorNames?: string[]; unmatched?: 'forward' | 'drop' } = {},
): { pipeline: Pipeline; records: Uint8Array[] } {
  const sink = new MemorySink();
  const pipeline = new Pipeline({
    decoder: new Decoder(defaultDecoderOptions()),
    parsers: o.parsers ?? [],
    processors: o.processors ?? [],
    processorNames: o.processorNames,
    unmatched: o.unmatched ?? 'forward',
    encode: ENCODERS[o.format ?? 'json'],
    sink,
  });
  const r = openCapture(file);
  while (r.next()) pipeline.processFrame(r.frame);
  return { pipeline, records: sink.records() };
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

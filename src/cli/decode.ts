// `otus decode FILE`: every frame of a capture file through the core decoder,
// one NDJSON line per frame on stdout, a summary on stderr.

import { once } from 'node:events';
import { openCapture } from '../capture-file/open.js';
import { Decoder } from '../decode/decoder.js';
import { DECODE_ERROR_NAMES } from '../decode/errors.js';
import { type DecoderOptions, defaultDecoderOptions } from '../decode/options.js';
import { decodeRecord } from '../decode/record.js';

export interface DecodeCommandOptions {
  file: string;
  limit: number; // 0 = all
  decoder: DecoderOptions;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const CHUNK = 64 * 1024;

export async function runDecode(o: DecodeCommandOptions): Promise<void> {
  const reader = openCapture(o.file);
  const decoder = new Decoder(o.decoder ?? defaultDecoderOptions());
  const f = reader.frame;
  let n = 0;
  let chunk = '';
  while ((o.limit === 0 || n < o.limit) && reader.next()) {
    n++;
    const p = decoder.decode(f);
    chunk += decodeRecord(p, n, f.hasTs, f.tsDigits) + '\n';
    if (chunk.length >= CHUNK) {
      if (!o.out.write(chunk)) await once(o.out, 'drain');
      chunk = '';
    }
  }
  if (chunk.length > 0 && !o.out.write(chunk)) await once(o.out, 'drain');

  const st = decoder.stats;
  const errors: string[] = [];
  for (let i = 1; i < st.errors.length; i++) if (st.errors[i] > 0) errors.push(`${DECODE_ERROR_NAMES[i]}=${st.errors[i]}`);
  const r = decoder.reassembler.stats;
  o.err.write(
    `otus decode: ${o.file}: ${n} frames (${reader.format}), ${reader.bytesRead} of ${reader.fileSize} bytes read` +
      (reader.endReason ? `; stopped: ${reader.endReason}` : '') +
      `\n  decode errors: ${errors.length ? errors.join(' ') : 'none'}` +
      `\n  reassembly: fragments=${r.fragments} completed=${r.completed} duplicates=${r.duplicates} overlaps=${r.overlaps} discarded=${r.discarded}` +
      ` timeouts=${r.timeouts} evicted=${r.evicted} too_large=${r.tooLarge} invalid=${r.invalid} pending=${r.pending}\n`,
  );
}

// Built-in reporters (design §4.2.4), run by the sender process: `file`
// (records to a file: NDJSON, or length-delimited protobuf — a varint length
// before each otus.v1.Record, as protobufjs' decodeDelimited reads) and
// `console` (NDJSON on stdout). Both batch into one buffer and write it
// with a synchronous write when full or on flush: the sender does nothing
// else meanwhile, and a slow disk slows the sender, never the capture side.

import { closeSync, openSync, writeSync } from 'node:fs';
import { writeVarint } from '../pipeline/codec-protobuf.js';
import type { EncodedRecord, PluginDefinition, RecordFormat, Reporter } from '../plugin/types.js';

const BATCH = 1 << 20;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** writeSync all of buf[0, n), retrying EAGAIN (stdout may be a non-blocking pipe). */
export function writeAllSync(fd: number, buf: Uint8Array, n: number): void {
  let off = 0;
  while (off < n) {
    try {
      off += writeSync(fd, buf, off, n - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}

export class FdReporter implements Reporter {
  private readonly batch = new Uint8Array(BATCH);
  private used = 0;
  records = 0;
  bytes = 0;

  constructor(
    private readonly fd: number,
    readonly format: RecordFormat,
    private readonly closeOnStop: boolean,
  ) {}

  report(rec: EncodedRecord): void {
    const need = rec.len + 10;
    if (this.used + need > BATCH) this.drain();
    if (need > BATCH) {
      // A record larger than the batch: write it alone.
      const tmp = new Uint8Array(need);
      let o = this.format === 'protobuf' ? writeVarint(tmp, 0, rec.len) : 0;
      tmp.set(rec.buf.subarray(rec.off, rec.off + rec.len), o);
      o += rec.len;
      writeAllSync(this.fd, tmp, o);
    } else {
      let o = this.used;
      if (this.format === 'protobuf') o = writeVarint(this.batch, o, rec.len);
      this.batch.set(rec.buf.subarray(rec.off, rec.off + rec.len), o);
      this.used = o + rec.len;
    }
    this.records++;
    this.bytes += rec.len;
  }

  private drain(): void {
    if (this.used > 0) writeAllSync(this.fd, this.batch, this.used);
    this.used = 0;
  }

  async flush(): Promise<void> {
    this.drain();
  }

  stop(): void {
    this.drain();
    if (this.closeOnStop) closeSync(this.fd);
  }
}

export interface FileReporterConfig {
  path: string;
  format: RecordFormat;
}

export const fileReporter: PluginDefinition<'reporter', FileReporterConfig> = {
  meta: {
    name: 'file',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: 'Writes records to a file: NDJSON, or length-delimited otus.v1.Record protobuf.',
    configSchema: {
      type: 'object',
      required: ['path'],
      properties: {
        path: { type: 'string', minLength: 1 },
        format: { enum: ['json', 'protobuf'], default: 'json' },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    const fd = openSync(ctx.config.path, 'w');
    return new FdReporter(fd, ctx.config.format, true);
  },
};

export const stdoutReporter: PluginDefinition<'reporter', Record<string, never>> = {
  meta: {
    name: 'console',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: 'Writes NDJSON records to standard output.',
    configSchema: { type: 'object', properties: {}, additionalProperties: false },
  },
  init() {
    return new FdReporter(1, 'json', false);
  },
};

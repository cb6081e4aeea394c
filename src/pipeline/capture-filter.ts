// The task's `filter:` section (docs/task-format.md) applied in user space, for
// replay, exactly as live capture applies it in the kernel: the structured
// keys become libpcap filter text (src/capture/filter.ts: CIDRs, ports,
// port range, protocol, and the fragments of matching hosts), a raw `bpf:`
// string is and-ed to it, libpcap compiles the text for the frame's link
// type, and the program runs on each frame before decoding
// (src/capture/bpf-vm.ts). One program per link type, compiled on first
// use; running it allocates nothing.

import { BpfProgram, dltForLinkType } from '../capture/bpf-vm.js';
import { compileFilter, structuredFilterText, type StructuredFilter } from '../capture/filter.js';
import { OtusError } from '../util/errors.js';

export interface TaskFilter extends StructuredFilter {
  bpf?: string;
}

/** libpcap's snaplen for programs: replay frames are whole, so the program never truncates. */
const SNAPLEN = 262144;
const DLT_EN10MB = 1;

export class CaptureFilter {
  /** The filter text libpcap compiles ('' = everything). */
  readonly text: string;
  private readonly programs = new Map<number, BpfProgram>();
  private lastLinkType = -1;
  private last: BpfProgram | null = null;

  /** Throws OTUS_ERR_TASK naming `where` (e.g. `task.yml: task.filter`) when a key or the text is wrong. */
  constructor(
    f: TaskFilter,
    private readonly where: string,
  ) {
    const { bpf, ...structured } = f;
    let text: string;
    try {
      text = structuredFilterText(structured);
    } catch (e) {
      throw new OtusError('OTUS_ERR_TASK', `${where}: ${(e as Error).message}`);
    }
    if (bpf !== undefined && typeof bpf !== 'string') throw new OtusError('OTUS_ERR_TASK', `${where}.bpf: expected filter text, got ${JSON.stringify(bpf)}`);
    const raw = bpf?.trim() ?? '';
    this.text = text && raw ? `(${text}) and (${raw})` : text || raw;
    if (this.text !== '') this.program(DLT_EN10MB); // bad text fails now, not on the first frame
  }

  get empty(): boolean {
    return this.text === '';
  }

  /** The program for a capture's link type; OTUS_ERR_TASK when libpcap cannot filter that link type. */
  program(linkType: number): BpfProgram {
    let p = this.programs.get(linkType);
    if (p === undefined) {
      try {
        const name = `filter "${this.text}"`;
        p = new BpfProgram(compileFilter(this.text, SNAPLEN, dltForLinkType(linkType)), name);
      } catch (e) {
        throw new OtusError('OTUS_ERR_TASK', `${this.where} (link type ${linkType}): ${(e as Error).message}`);
      }
      this.programs.set(linkType, p);
    }
    return p;
  }

  /** Does the frame buf[off, off+caplen) (len bytes on the wire) pass? */
  matches(buf: Uint8Array, off: number, caplen: number, len: number, linkType: number): boolean {
    if (linkType !== this.lastLinkType) {
      this.last = this.program(linkType);
      this.lastLinkType = linkType;
    }
    return this.last!.run(buf, off, caplen, len) !== 0;
  }
}

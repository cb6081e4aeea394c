// Classic BPF in user space, for `otus replay`: capture files never pass
// through a socket, so the program libpcap compiles for a task's filter text
// (compileFilter in filter.ts) is run here instead of in the kernel.
//
// Semantics are libpcap's bpf_filter (what `tcpdump -r FILE FILTER` does):
// unsigned 32-bit registers, a load past the captured bytes drops the frame,
// division by X = 0 drops it, shifts by X >= 32 give 0. Validation is the
// kernel's bpf_check_classic (the stricter of the two), so a program that
// replay accepts is one SO_ATTACH_FILTER would accept for live capture; only
// the kernel's 4096-instruction cap is left out (user space has no need of it).
// So libpcap's `protochain`, whose loop is a backward jump, is refused here
// as the kernel refuses it, though tcpdump -r runs it.
//
// Registers are kept as int32 (their bit pattern) so V8 keeps them unboxed;
// `>>> 0` turns them unsigned only where the value matters (compares,
// division, offsets, the return value).

import { OtusError } from '../util/errors.js';

/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k. */
export const BPF_INSN_BYTES = 8;
/** Scratch memory words (BPF_MEMWORDS). */
export const BPF_MEMWORDS = 16;
/** Ancillary loads (skb metadata) start here; a capture file has no skb. */
const SKF_AD_OFF = 0xfffff000;

// Dense operation numbers (decoded once from the BPF codes, so the run loop
// switches over 0..N rather than sparse 16-bit codes).
const RET_K = 0;
const RET_A = 1;
const LD_W_ABS = 2;
const LD_H_ABS = 3;
const LD_B_ABS = 4;
const LD_W_IND = 5;
const LD_H_IND = 6;
const LD_B_IND = 7;
const LD_LEN = 8;
const LD_IMM = 9;
const LD_MEM = 10;
const LDX_LEN = 11;
const LDX_IMM = 12;
const LDX_MEM = 13;
const LDX_MSH = 14;
const ST = 15;
const STX = 16;
const ADD_K = 17;
const ADD_X = 18;
const SUB_K = 19;
const SUB_X = 20;
const MUL_K = 21;
const MUL_X = 22;
const DIV_K = 23;
const DIV_X = 24;
const MOD_K = 25;
const MOD_X = 26;
const AND_K = 27;
const AND_X = 28;
const OR_K = 29;
const OR_X = 30;
const XOR_K = 31;
const XOR_X = 32;
const LSH_K = 33;
const LSH_X = 34;
const RSH_K = 35;
const RSH_X = 36;
const NEG = 37;
const JA = 38;
const JEQ_K = 39;
const JEQ_X = 40;
const JGT_K = 41;
const JGT_X = 42;
const JGE_K = 43;
const JGE_X = 44;
const JSET_K = 45;
const JSET_X = 46;
const TAX = 47;
const TXA = 48;

/** BPF code -> [operation, mnemonic]: exactly the codes the kernel's bpf_check_classic allows. */
const OPS = new Map<number, [number, string]>([
  [0x06, [RET_K, 'ret #k']],
  [0x16, [RET_A, 'ret a']],
  [0x20, [LD_W_ABS, 'ld [k]']],
  [0x28, [LD_H_ABS, 'ldh [k]']],
  [0x30, [LD_B_ABS, 'ldb [k]']],
  [0x40, [LD_W_IND, 'ld [x+k]']],
  [0x48, [LD_H_IND, 'ldh [x+k]']],
  [0x50, [LD_B_IND, 'ldb [x+k]']],
  [0x80, [LD_LEN, 'ld #len']],
  [0x00, [LD_IMM, 'ld #k']],
  [0x60, [LD_MEM, 'ld M[k]']],
  [0x81, [LDX_LEN, 'ldx #len']],
  [0x01, [LDX_IMM, 'ldx #k']],
  [0x61, [LDX_MEM, 'ldx M[k]']],
  [0xb1, [LDX_MSH, 'ldxb 4*([k]&0xf)']],
  [0x02, [ST, 'st M[k]']],
  [0x03, [STX, 'stx M[k]']],
  [0x04, [ADD_K, 'add #k']],
  [0x0c, [ADD_X, 'add x']],
  [0x14, [SUB_K, 'sub #k']],
  [0x1c, [SUB_X, 'sub x']],
  [0x24, [MUL_K, 'mul #k']],
  [0x2c, [MUL_X, 'mul x']],
  [0x34, [DIV_K, 'div #k']],
  [0x3c, [DIV_X, 'div x']],
  [0x94, [MOD_K, 'mod #k']],
  [0x9c, [MOD_X, 'mod x']],
  [0x54, [AND_K, 'and #k']],
  [0x5c, [AND_X, 'and x']],
  [0x44, [OR_K, 'or #k']],
  [0x4c, [OR_X, 'or x']],
  [0xa4, [XOR_K, 'xor #k']],
  [0xac, [XOR_X, 'xor x']],
  [0x64, [LSH_K, 'lsh #k']],
  [0x6c, [LSH_X, 'lsh x']],
  [0x74, [RSH_K, 'rsh #k']],
  [0x7c, [RSH_X, 'rsh x']],
  [0x84, [NEG, 'neg']],
  [0x05, [JA, 'ja']],
  [0x15, [JEQ_K, 'jeq #k']],
  [0x1d, [JEQ_X, 'jeq x']],
  [0x25, [JGT_K, 'jgt #k']],
  [0x2d, [JGT_X, 'jgt x']],
  [0x35, [JGE_K, 'jge #k']],
  [0x3d, [JGE_X, 'jge x']],
  [0x45, [JSET_K, 'jset #k']],
  [0x4d, [JSET_X, 'jset x']],
  [0x07, [TAX, 'tax']],
  [0x87, [TXA, 'txa']],
]);

const hex = (n: number, digits: number): string => `0x${n.toString(16).padStart(digits, '0')}`;

/**
 * The DLT value libpcap compiles for, given a capture's LINKTYPE value
 * (libpcap's linktype_to_dlt, Linux values): the few LINKTYPEs that differ
 * from their DLT. compileFilter(text, snaplen, 101) fails; 12 is raw IP.
 */
export function dltForLinkType(linkType: number): number {
  switch (linkType) {
    case 100: return 11; // ATM_RFC1483
    case 101: return 12; // RAW
    case 102: return 15; // SLIP_BSDOS
    case 103: return 16; // PPP_BSDOS
    case 106: return 19; // ATM_CLIP
    default: return linkType;
  }
}

export class BpfProgram {
  /** Instruction count. */
  readonly length: number;
  /** Dense operation per instruction. */
  private readonly ops: Uint8Array;
  /** k per instruction, as int32 bits. */
  private readonly ks: Int32Array;
  /** Absolute next pc when a conditional jump is taken / not taken (JA: taken only). */
  private readonly jumpTrue: Int32Array;
  private readonly jumpFalse: Int32Array;
  /** Scratch memory, reused by every run (validation proves each word is stored before it is read). */
  private readonly mem = new Int32Array(BPF_MEMWORDS);

  /**
   * `insns`: struct sock_filter[] in host byte order, as compileFilter returns it.
   * `name` prefixes error messages (e.g. 'filter "udp"'). Throws OTUS_ERR_FILTER
   * for a program the kernel would refuse.
   */
  constructor(insns: Uint8Array, name = 'BPF program') {
    const fail = (what: string): never => {
      throw new OtusError('OTUS_ERR_FILTER', `${name}: ${what}`);
    };
    if (insns.byteLength === 0) fail('empty program');
    if (insns.byteLength % BPF_INSN_BYTES !== 0) fail(`${insns.byteLength} bytes is not a whole number of ${BPF_INSN_BYTES}-byte instructions`);
    const n = insns.byteLength / BPF_INSN_BYTES;
    // An aligned copy read through typed arrays is host byte order, as the native side wrote it.
    const raw = new Uint8Array(insns);
    const codes = new Uint16Array(raw.buffer, 0, n * 4);
    const words = new Uint32Array(raw.buffer, 0, n * 2);
    this.length = n;
    this.ops = new Uint8Array(n);
    this.ks = new Int32Array(n);
    this.jumpTrue = new Int32Array(n);
    this.jumpFalse = new Int32Array(n);

    for (let pc = 0; pc < n; pc++) {
      const code = codes[pc * 4]!;
      const jt = raw[pc * 8 + 2]!;
      const jf = raw[pc * 8 + 3]!;
      const k = words[pc * 2 + 1]!;
      const at = (what: string): never => fail(`instruction ${pc} (code ${hex(code, 4)}${OPS.has(code) ? ` ${OPS.get(code)![1]}` : ''}, k ${k}): ${what}`);
      const entry = OPS.get(code);
      if (entry === undefined) at('unknown opcode');
      const op = entry![0];
      this.ops[pc] = op;
      this.ks[pc] = k | 0;
      switch (op) {
        case DIV_K:
        case MOD_K:
          if (k === 0) at('division by constant 0');
          break;
        case LSH_K:
        case RSH_K:
          if (k >= 32) at('shift by 32 or more');
          break;
        case LD_MEM:
        case LDX_MEM:
        case ST:
        case STX:
          if (k >= BPF_MEMWORDS) at(`scratch memory index ${k} out of range (0..${BPF_MEMWORDS - 1})`);
          break;
        case LD_W_ABS:
        case LD_H_ABS:
        case LD_B_ABS:
          // Offsets from here up name skb metadata (SKF_AD_*), which a file has not got.
          if (k >= SKF_AD_OFF) at('ancillary load (SKF_AD_OFF) needs kernel socket metadata');
          break;
        case JA:
          // Unsigned k: a "backward" jump is a huge forward one, out of range.
          if (k >= n - pc - 1) at(k >= 0x80000000 ? `backward jump (by ${k | 0})` : `jump to ${pc + 1 + k} is past the last instruction ${n - 1}`);
          this.jumpTrue[pc] = pc + 1 + k;
          break;
        case JEQ_K:
        case JEQ_X:
        case JGT_K:
        case JGT_X:
        case JGE_K:
        case JGE_X:
        case JSET_K:
        case JSET_X:
          if (pc + 1 + jt >= n || pc + 1 + jf >= n) at(`jump to ${pc + 1 + Math.max(jt, jf)} is past the last instruction ${n - 1}`);
          this.jumpTrue[pc] = pc + 1 + jt;
          this.jumpFalse[pc] = pc + 1 + jf;
          break;
      }
    }
    const last = this.ops[n - 1];
    if (last !== RET_K && last !== RET_A) fail(`last instruction ${n - 1} (code ${hex(codes[(n - 1) * 4]!, 4)}) is not a return`);
    this.checkMemoryStoredBeforeLoaded(fail);
  }

  /**
   * The kernel's check_load_and_stores: on every path, a scratch word is
   * stored before it is loaded (so the reused `mem` never leaks a previous
   * frame's values). Jumps are forward, so one pass in pc order sees every
   * predecessor of an instruction before the instruction.
   */
  private checkMemoryStoredBeforeLoaded(fail: (what: string) => never): void {
    const n = this.length;
    const ALL = 0xffff;
    // Words stored on every path reaching pc through a jump (ALL: no jump reaches it yet).
    const viaJumps = new Uint16Array(n).fill(ALL);
    // Words stored on every path falling through into pc. Like the kernel, a
    // return does not reset it: that only makes the check stricter.
    let stored = 0;
    for (let pc = 0; pc < n; pc++) {
      stored &= viaJumps[pc]!;
      const op = this.ops[pc]!;
      const k = this.ks[pc]!;
      switch (op) {
        case ST:
        case STX:
          stored |= 1 << k;
          break;
        case LD_MEM:
        case LDX_MEM:
          if ((stored & (1 << k)) === 0) fail(`instruction ${pc} loads scratch memory M[${k}] that may not have been stored`);
          break;
        case JA:
          viaJumps[this.jumpTrue[pc]!] &= stored;
          stored = ALL;
          break;
        case JEQ_K:
        case JEQ_X:
        case JGT_K:
        case JGT_X:
        case JGE_K:
        case JGE_X:
        case JSET_K:
        case JSET_X:
          viaJumps[this.jumpTrue[pc]!] &= stored;
          viaJumps[this.jumpFalse[pc]!] &= stored;
          stored = ALL;
          break;
      }
    }
  }

  /**
   * Runs the program over frame bytes buf[off, off + caplen) whose wire length
   * is `len`. Returns the program's RET value: 0 drops the frame; libpcap's
   * programs return the snaplen to accept. Never throws, never allocates.
   */
  run(buf: Uint8Array, off: number, caplen: number, len: number): number {
    // Bytes past the buffer are not captured bytes either.
    if (caplen > buf.length - off) caplen = buf.length - off;
    const ops = this.ops;
    const ks = this.ks;
    const mem = this.mem;
    const jumpTrue = this.jumpTrue;
    const jumpFalse = this.jumpFalse;
    let a = 0;
    let x = 0;
    let pc = 0;
    for (;;) {
      const k = ks[pc]!;
      switch (ops[pc]) {
        case RET_K:
          return k >>> 0;
        case RET_A:
          return a >>> 0;

        case LD_W_ABS: {
          if (k >>> 0 > caplen - 4) return 0;
          const p = off + k;
          a = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
          pc++;
          continue;
        }
        case LD_H_ABS: {
          if (k >>> 0 > caplen - 2) return 0;
          const p = off + k;
          a = (buf[p]! << 8) | buf[p + 1]!;
          pc++;
          continue;
        }
        case LD_B_ABS:
          if (k >>> 0 >= caplen) return 0;
          a = buf[off + k]!;
          pc++;
          continue;
        case LD_W_IND: {
          // X + k without 32-bit wrap-around, as libpcap checks it.
          const at = (x >>> 0) + (k >>> 0);
          if (at > caplen - 4) return 0;
          const p = off + at;
          a = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
          pc++;
          continue;
        }
        case LD_H_IND: {
          const at = (x >>> 0) + (k >>> 0);
          if (at > caplen - 2) return 0;
          const p = off + at;
          a = (buf[p]! << 8) | buf[p + 1]!;
          pc++;
          continue;
        }
        case LD_B_IND: {
          const at = (x >>> 0) + (k >>> 0);
          if (at >= caplen) return 0;
          a = buf[off + at]!;
          pc++;
          continue;
        }
        case LD_LEN:
          a = len | 0;
          pc++;
          continue;
        case LD_IMM:
          a = k;
          pc++;
          continue;
        case LD_MEM:
          a = mem[k]!;
          pc++;
          continue;
        case LDX_LEN:
          x = len | 0;
          pc++;
          continue;
        case LDX_IMM:
          x = k;
          pc++;
          continue;
        case LDX_MEM:
          x = mem[k]!;
          pc++;
          continue;
        case LDX_MSH:
          // IPv4 header length: 4 * low nibble of the byte at k.
          if (k >>> 0 >= caplen) return 0;
          x = (buf[off + k]! & 0xf) << 2;
          pc++;
          continue;
        case ST:
          mem[k] = a;
          pc++;
          continue;
        case STX:
          mem[k] = x;
          pc++;
          continue;

        case ADD_K:
          a = (a + k) | 0;
          pc++;
          continue;
        case ADD_X:
          a = (a + x) | 0;
          pc++;
          continue;
        case SUB_K:
          a = (a - k) | 0;
          pc++;
          continue;
        case SUB_X:
          a = (a - x) | 0;
          pc++;
          continue;
        case MUL_K:
          a = Math.imul(a, k);
          pc++;
          continue;
        case MUL_X:
          a = Math.imul(a, x);
          pc++;
          continue;
        case DIV_K:
          a = ((a >>> 0) / (k >>> 0)) | 0;
          pc++;
          continue;
        case DIV_X:
          if (x === 0) return 0;
          a = ((a >>> 0) / (x >>> 0)) | 0;
          pc++;
          continue;
        case MOD_K:
          a = ((a >>> 0) % (k >>> 0)) | 0;
          pc++;
          continue;
        case MOD_X:
          if (x === 0) return 0;
          a = ((a >>> 0) % (x >>> 0)) | 0;
          pc++;
          continue;
        case AND_K:
          a &= k;
          pc++;
          continue;
        case AND_X:
          a &= x;
          pc++;
          continue;
        case OR_K:
          a |= k;
          pc++;
          continue;
        case OR_X:
          a |= x;
          pc++;
          continue;
        case XOR_K:
          a ^= k;
          pc++;
          continue;
        case XOR_X:
          a ^= x;
          pc++;
          continue;
        case LSH_K:
          a <<= k;
          pc++;
          continue;
        case LSH_X:
          // JS masks the count to 5 bits; libpcap gives 0 for 32 and up.
          a = x >>> 0 < 32 ? a << x : 0;
          pc++;
          continue;
        case RSH_K:
          a = (a >>> k) | 0;
          pc++;
          continue;
        case RSH_X:
          a = x >>> 0 < 32 ? (a >>> x) | 0 : 0;
          pc++;
          continue;
        case NEG:
          a = -a | 0;
          pc++;
          continue;

        case JA:
          pc = jumpTrue[pc]!;
          continue;
        case JEQ_K:
          pc = a === k ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JEQ_X:
          pc = a === x ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JGT_K:
          pc = a >>> 0 > k >>> 0 ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JGT_X:
          pc = a >>> 0 > x >>> 0 ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JGE_K:
          pc = a >>> 0 >= k >>> 0 ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JGE_X:
          pc = a >>> 0 >= x >>> 0 ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JSET_K:
          pc = (a & k) !== 0 ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;
        case JSET_X:
          pc = (a & x) !== 0 ? jumpTrue[pc]! : jumpFalse[pc]!;
          continue;

        case TAX:
          x = a;
          pc++;
          continue;
        case TXA:
          a = x;
          pc++;
          continue;
        default:
          return 0; // unreachable: the constructor admits known operations only
      }
    }
  }

  /** One line per instruction, tcpdump -d style; for error messages and debugging. */
  disassemble(): string {
    const names = new Map<number, string>();
    for (const [, [op, name]] of OPS) names.set(op, name);
    const lines: string[] = [];
    for (let pc = 0; pc < this.length; pc++) {
      const op = this.ops[pc]!;
      const jumps = op === JA ? ` -> ${this.jumpTrue[pc]}` : op >= JEQ_K && op <= JSET_X ? ` jt ${this.jumpTrue[pc]} jf ${this.jumpFalse[pc]}` : '';
      const name = names.get(op)!;
      const k = name.includes('k') ? ` k=${this.ks[pc]! >>> 0}` : '';
      lines.push(`(${String(pc).padStart(3, '0')}) ${name}${k}${jumps}`);
    }
    return lines.join('\n');
  }
}

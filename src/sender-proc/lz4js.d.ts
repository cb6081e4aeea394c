// lz4js ships no types: the two functions the kafkajs LZ4 codec uses (src/sender-proc/kafka.ts).
declare module 'lz4js' {
  /** An LZ4 frame of src. */
  export function compress(src: Uint8Array): Uint8Array;
  export function decompress(src: Uint8Array): Uint8Array;
}

declare module 'lz4js/xxh32.js' {
  export function hash(seed: number, src: Uint8Array, index: number, len: number): number;
}

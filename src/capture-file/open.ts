// Opens a capture file (pcap or pcapng, told apart by magic) as a reader over
// an mmap of the whole file. Opening throws coded errors; reading never does.

import { statSync } from 'node:fs';
import { native } from '../native.js';
import { OtusError } from '../util/errors.js';
import type { Frame } from './frame.js';
import { PCAP_HEADER_LEN, PcapReader, pcapMagic } from './pcap.js';
import { PcapngReader, SHB_MIN_LEN, pcapngByteOrder } from './pcapng.js';

export interface CaptureReader {
  readonly format: 'pcap' | 'pcapng';
  /** Overwritten by next(). */
  readonly frame: Frame;
  /** False at end of file (or at a truncated/corrupt tail). Never throws. */
  next(): boolean;
  readonly framesRead: number;
  /** pcapng packets naming an interface with no IDB in their section (always 0 for pcap). */
  readonly framesSkipped: number;
  /** Bytes of the file consumed by complete records (headers and skipped blocks included). */
  readonly bytesRead: number;
  readonly fileSize: number;
  /** null while fine; after next() returned false: null for a clean end, else a short reason. */
  readonly endReason: string | null;
}

/** Maps `path` and opens it; OTUS_ERR_CAPTURE_IO if it cannot be read, OTUS_ERR_NOT_A_CAPTURE if it is not a capture. */
export function openCapture(path: string): CaptureReader {
  let ab: ArrayBuffer;
  // Capture files are mapped, so read whole and in place: a FIFO, device or directory cannot be (and a FIFO's open would wait for a writer).
  const kind = notRegular(path);
  if (kind !== null) throw new OtusError('OTUS_ERR_CAPTURE_IO', `${path}: cannot read capture file: it is ${kind}, not a regular file (capture files are read in place: write the capture to a file first)`);
  try {
    ab = native.mapFile(path);
  } catch (e) {
    throw new OtusError('OTUS_ERR_CAPTURE_IO', `${path}: cannot read capture file (${(e as Error).message})`, { cause: e });
  }
  return openCaptureBuffer(new Uint8Array(ab), path);
}

/** What `path` is when it is not a regular file ('a FIFO', ...), or null (a regular file, or missing: the open says so). */
function notRegular(path: string): string | null {
  let st;
  try {
    st = statSync(path);
  } catch {
    return null;
  }
  if (st.isFile()) return null;
  return st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a directory' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a file';
}

/** Same as openCapture over bytes already in memory; `name` is used in error messages. */
export function openCaptureBuffer(buf: Uint8Array, name: string): CaptureReader {
  const notCapture = (what: string): OtusError =>
    new OtusError('OTUS_ERR_NOT_A_CAPTURE', `${name}: not a pcap or pcapng file (${what})`);
  if (buf.byteLength < 4) throw notCapture(buf.byteLength === 0 ? 'empty file' : `only ${buf.byteLength} bytes`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  const hex = `0x${magic.toString(16).padStart(8, '0')}`;

  const pcap = pcapMagic(magic);
  if (pcap !== null) {
    if (buf.byteLength < PCAP_HEADER_LEN) throw notCapture(`pcap magic ${hex} but only ${buf.byteLength} of ${PCAP_HEADER_LEN} header bytes`);
    return new PcapReader(buf, pcap);
  }
  if (magic === 0x0a0d0d0a) {
    if (buf.byteLength < SHB_MIN_LEN) throw notCapture(`pcapng magic but only ${buf.byteLength} of ${SHB_MIN_LEN} section header bytes`);
    // The block type alone is just CR LF CR LF; the byte-order magic confirms pcapng.
    if (pcapngByteOrder(view, 0) === null) throw notCapture(`pcapng block type but byte-order magic 0x${view.getUint32(8, false).toString(16).padStart(8, '0')}`);
    return new PcapngReader(buf);
  }
  throw notCapture(`magic ${hex}`);
}

// Capture drivers by name.

import { OtusError } from '../util/errors.js';
import { AfPacketCapturer } from './afpacket.js';
import type { CaptureOptions, Capturer } from './capturer.js';
import { FileCapturer } from './file.js';
import { PcapCapturer } from './pcap.js';
import { XdpCapturer } from './xdp.js';

export const DRIVERS = ['af_packet_v3', 'pcap', 'xdp', 'file'] as const;
export type DriverName = (typeof DRIVERS)[number];

export function createCapturer(driver: string, o: CaptureOptions): Capturer {
  switch (driver) {
    case 'af_packet_v3':
      return new AfPacketCapturer(o);
    case 'pcap':
      return new PcapCapturer(o);
    case 'xdp':
      return new XdpCapturer(o);
    case 'file':
      return new FileCapturer(o);
    default:
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--driver: expected ${DRIVERS.join(', ')}, got "${driver}"`);
  }
}

export { AfPacketCapturer, FileCapturer, PcapCapturer, XdpCapturer };
export type { CaptureOptions, Capturer };
export { defaultCaptureOptions, StreamStats } from './capturer.js';
export type { CaptureStream, FrameSink, FanoutMode } from './capturer.js';
export { compileFilter, filterText, structuredFilterText, type StructuredFilter } from './filter.js';
export { allowedCpus, autoCpu, checkCaptureAllowed, checkCpus, checkWorkers, cpuFor, type CpuChoice, interfaceInfo, interfaceState } from './iface.js';

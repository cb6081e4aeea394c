// The core L2–L4 decoder (docs/architecture.md, "The path of one packet"): not a plugin, since every packet goes
// through it. decode() walks one frame layer by layer into the one reused
// DecodedPacket; each layer lives in its own file and calls the next. Nothing
// here allocates or throws per packet: a malformed frame ends the walk with a
// counted DecodeError and the caller goes on with the next frame.

import type { Frame } from '../capture-file/frame.js';
import { DECODE_ERROR_COUNT, DecodeError } from './errors.js';
import { decodeLink } from './link.js';
import { type DecoderOptions, defaultDecoderOptions } from './options.js';
import { DecodedPacket } from './packet.js';
import { Reassembler } from './reassembly.js';

/** Values of Decoder.udpTunnelPorts. */
export const enum UdpTunnel {
  None = 0,
  Vxlan = 1,
  Geneve = 2,
}

export class DecoderStats {
  frames = 0;
  bytes = 0;
  /** Frames that ended in an error, indexed by DecodeError. */
  readonly errors = new Float64Array(DECODE_ERROR_COUNT);
}

export class Decoder {
  readonly pkt = new DecodedPacket();
  readonly stats = new DecoderStats();
  readonly reassembler: Reassembler;

  // Flattened options, read per packet.
  readonly vxlan: boolean;
  readonly geneve: boolean;
  readonly gre: boolean;
  readonly erspan: boolean;
  readonly ipip: boolean;
  readonly maxTunnelDepth: number;
  /** UDP destination port → UdpTunnel, only for enabled tunnels (a flat table, as gopacket does). */
  readonly udpTunnelPorts = new Uint8Array(65536);

  /** The frame was cut by the snap length: short IP/UDP lengths are expected, not errors. */
  snapCut = false;
  /** Reassembled datagrams entered so far in this frame (nesting level). */
  reasmLevel = 0;
  /** Capture time of the frame in ms, for reassembly timeouts. */
  nowMs = 0;

  constructor(opts: DecoderOptions = defaultDecoderOptions()) {
    this.vxlan = opts.tunnels.vxlan;
    this.geneve = opts.tunnels.geneve;
    this.gre = opts.tunnels.gre;
    this.erspan = opts.tunnels.erspan;
    this.ipip = opts.tunnels.ipip;
    this.maxTunnelDepth = opts.maxTunnelDepth;
    if (this.vxlan) for (const p of opts.vxlanPorts) this.udpTunnelPorts[p] = UdpTunnel.Vxlan;
    if (this.geneve) for (const p of opts.genevePorts) this.udpTunnelPorts[p] = UdpTunnel.Geneve;
    this.reassembler = new Reassembler(opts.reassembly);
  }

  /** Decodes one frame. The returned packet is overwritten by the next call. */
  decode(f: Frame): DecodedPacket {
    return this.decodeBytes(f.buf, f.view, f.off, f.caplen, f.len, f.linkType, f.tsSec, f.tsNsec, f.hasTs);
  }

  decodeBytes(
    buf: Uint8Array,
    view: DataView,
    off: number,
    caplen: number,
    len: number,
    linkType: number,
    tsSec: number,
    tsNsec: number,
    hasTs: boolean,
  ): DecodedPacket {
    const p = this.pkt;
    p.reset();
    p.frameBuf = buf;
    p.frameOff = off;
    p.caplen = caplen;
    p.len = len;
    p.linkType = linkType;
    p.tsSec = tsSec;
    p.tsNsec = tsNsec;
    p.payloadBuf = buf;
    p.payloadView = view;
    this.snapCut = caplen < len;
    this.reasmLevel = 0;
    // Frames without a timestamp keep the last known time.
    if (hasTs) this.nowMs = tsSec * 1000 + tsNsec / 1e6;
    const st = this.stats;
    st.frames++;
    st.bytes += caplen;
    decodeLink(this, buf, view, off, off + caplen, linkType);
    return p;
  }

  /** Records the first error of this frame and counts it. */
  fail(code: DecodeError): void {
    if (this.pkt.error === DecodeError.None) {
      this.pkt.error = code;
      this.stats.errors[code]++;
    }
  }
}

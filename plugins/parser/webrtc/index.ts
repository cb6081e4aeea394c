// webrtc parser (issue 5 item 7; plugins/README.md "WebRTC: ports + FlowRegistry
// + header bytes"): the media-plane datagrams of a WebRTC session, told
// apart by their first byte (RFC 7983, message.ts): STUN/TURN, DTLS,
// SRTP/SRTCP, TURN ChannelData. Signalling (SDP over WebSocket/HTTP) is not
// parsed here.
//
// Which flows: UDP with a configured port (`ports`, `port_ranges`) on either
// side; and, when the pipeline hands plugins the task's flow registry
// (PluginContext.flows), any UDP packet whose source or destination endpoint
// is registered (e.g. by the SIP parser from SDP): such records also get the
// registered `call-id`, copied from shared memory as bytes.
//
// Per datagram: one parse (message.ts) validates what the labels and payload
// need; labels come from precomputed strings; the payload is this parser's
// one reused object, which writes JSON (or protobuf) on the output path.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import { symmetricFlowHash } from '../../../src/pipeline/flow-hash.js';
import type { OutputRecord, Payload } from '../../../src/pipeline/record.js';
import type { Parser, PluginDefinition } from '../../../src/plugin/types.js';
import type { FlowRegistry } from '../../../src/shm/registry.js';
import { CLASS_NAME, isWebrtcFirstByte, KIND_NAMES, Kind, MALFORMED_NAMES, Malformed, METHOD_NAME, REJECT_NAMES, WebrtcMessage } from './message.js';

export interface WebrtcConfig {
  /** UDP ports (either side) whose datagrams are WebRTC media-plane traffic. */
  ports: number[];
  /** Inclusive UDP port ranges, e.g. a media relay's [[49152, 65535]]. */
  port_ranges: [number, number][];
  /** Also take packets whose endpoint is in the task's flow registry (when there is one). */
  registered: boolean;
}

const DECIMAL: string[] = Array.from({ length: 256 }, (_, i) => String(i));
/** `stun.method` values: the IANA name, else the method number in decimal (made once at load). */
const METHOD_LABEL: string[] = METHOD_NAME.map((n, i) => (n !== '' ? n : String(i)));

export class WebrtcStats {
  messages = 0;
  records = 0;
  /** Records by Kind. */
  readonly kinds = new Float64Array(KIND_NAMES.length);
  readonly rejected = new Float64Array(REJECT_NAMES.length);
  readonly malformed = new Float64Array(MALFORMED_NAMES.length);
  /** Records whose flow was found in the flow registry (labelled with call-id). */
  registered = 0;
  /** DTLS datagrams whose walk stopped at a record with a connection ID (not malformed: its length is negotiated). */
  dtlsCid = 0;

  toJSON(): Record<string, unknown> {
    const pick = (names: readonly string[], a: Float64Array, from: number): Record<string, number> => {
      const o: Record<string, number> = {};
      for (let i = from; i < names.length; i++) if (a[i] > 0) o[names[i]] = a[i];
      return o;
    };
    return {
      messages: this.messages,
      records: this.records,
      kinds: pick(KIND_NAMES, this.kinds, 1),
      rejected: pick(REJECT_NAMES, this.rejected, 0),
      malformed: pick(MALFORMED_NAMES, this.malformed, 1),
      registered: this.registered,
      dtls_cid: this.dtlsCid,
    };
  }
}

/** JSON from message.ts; protobuf `otus.webrtc.v1.WebrtcPayload` (webrtc.proto). */
export class WebrtcPayload implements Payload {
  readonly type = 'webrtc';
  constructor(private readonly m: WebrtcMessage) {}

  writeJson(buf: Uint8Array, off: number, end: number): number {
    return this.m.writeJson(buf, off, end);
  }

  binarySize(): number {
    const m = this.m;
    let n = 2 + KIND_NAMES[m.kind].length;
    const b = m.b;
    const base = m.base;
    switch (m.kind) {
      case Kind.Stun:
        n += 1 + varintSize(m.stunType) + 2 + 12 + 2; // type, transaction id (12 bytes: the last 12 of the header), cookie
        break;
      case Kind.Dtls:
        if (m.dtlsType >= 0) n += 1 + varintSize(m.dtlsType);
        n += 1 + varintSize(m.dtlsRecords);
        break;
      case Kind.Srtp:
        n += 1 + varintSize(u32(b, base + 8)) + 1 + varintSize(b[base + 1] & 127) + 1 + varintSize((b[base + 2] << 8) | b[base + 3]);
        break;
      case Kind.Srtcp:
        n += 1 + varintSize(u32(b, base + 4)) + 1 + varintSize(b[base + 1]);
        break;
      case Kind.TurnChannel:
        n += 1 + varintSize((b[base] << 8) | b[base + 1]);
        break;
      default:
    }
    if (m.malformed !== Malformed.None) n += 2 + MALFORMED_NAMES[m.malformed].length;
    return n;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    if (end - off < this.binarySize()) return -1;
    const m = this.m;
    const b = m.b;
    const base = m.base;
    off = str(buf, off, 0x0a, KIND_NAMES[m.kind]); // 1: kind
    switch (m.kind) {
      case Kind.Stun:
        buf[off++] = 0x10; // 2: stun_type
        off = writeVarint(buf, off, m.stunType);
        buf[off++] = 0x1a; // 3: transaction_id
        buf[off++] = 12;
        for (let i = 8; i < 20; i++) buf[off++] = b[base + i];
        buf[off++] = 0x20; // 4: cookie
        buf[off++] = m.cookie ? 1 : 0;
        break;
      case Kind.Dtls:
        if (m.dtlsType >= 0) {
          buf[off++] = 0x28; // 5: dtls_content_type
          off = writeVarint(buf, off, m.dtlsType);
        }
        buf[off++] = 0x30; // 6: dtls_records
        off = writeVarint(buf, off, m.dtlsRecords);
        break;
      case Kind.Srtp:
        buf[off++] = 0x38; // 7: ssrc
        off = writeVarint(buf, off, u32(b, base + 8));
        buf[off++] = 0x40; // 8: pt
        off = writeVarint(buf, off, b[base + 1] & 127);
        buf[off++] = 0x48; // 9: seq
        off = writeVarint(buf, off, (b[base + 2] << 8) | b[base + 3]);
        break;
      case Kind.Srtcp:
        buf[off++] = 0x38; // 7: ssrc
        off = writeVarint(buf, off, u32(b, base + 4));
        buf[off++] = 0x40; // 8: pt
        off = writeVarint(buf, off, b[base + 1]);
        break;
      case Kind.TurnChannel:
        buf[off++] = 0x50; // 10: channel
        off = writeVarint(buf, off, (b[base] << 8) | b[base + 1]);
        break;
      default:
    }
    if (m.malformed !== Malformed.None) off = str(buf, off, 0x5a, MALFORMED_NAMES[m.malformed]); // 11: malformed
    return off;
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** A short ASCII string field (< 128 bytes). */
function str(buf: Uint8Array, off: number, tag: number, s: string): number {
  buf[off++] = tag;
  buf[off++] = s.length;
  for (let i = 0; i < s.length; i++) buf[off++] = s.charCodeAt(i);
  return off;
}

export class WebrtcParser implements Parser {
  readonly protocol = 'webrtc';
  readonly stats = new WebrtcStats();
  readonly msg = new WebrtcMessage();
  private readonly payload: WebrtcPayload;
  private readonly ports = new Uint8Array(65536);
  private readonly flows: FlowRegistry | null;

  constructor(cfg: WebrtcConfig, flows: FlowRegistry | null = null) {
    for (const p of cfg.ports) this.ports[p] = 1;
    for (const [lo, hi] of cfg.port_ranges) for (let p = lo; p <= hi; p++) this.ports[p] = 1;
    this.flows = cfg.registered ? flows : null;
    this.payload = new WebrtcPayload(this.msg);
  }

  canHandle(p: DecodedPacket): boolean {
    if (p.proto !== 17 || p.payloadLen <= 0) return false;
    if (this.ports[p.sport] === 1 || this.ports[p.dport] === 1) return true;
    if (this.flows === null) return false;
    if (this.lookup(p) >= 0) return true;
    // An SDP in an earlier frame on another capture process may register this flow.
    return isWebrtcFirstByte(p.payloadBuf[p.payloadOff]) && this.flows.catchesUp && this.flows.catchUp(p.tsSec, p.tsNsec, symmetricFlowHash(p)) && this.lookup(p) >= 0;
  }

  /** The registry slot of the packet's destination, else source endpoint; -1 when neither is registered. */
  private lookup(p: DecodedPacket): number {
    const f = this.flows!;
    if (p.ipVersion === 4) {
      const s = f.lookupEndpoint4(p.dst4, p.dport);
      return s >= 0 ? s : f.lookupEndpoint4(p.src4, p.sport);
    }
    if (p.ipVersion === 6) {
      const s = f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
      return s >= 0 ? s : f.lookupEndpoint6(p.addrBuf, p.srcOff, p.sport);
    }
    return -1;
  }

  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    const st = this.stats;
    st.messages++;
    const m = this.msg;
    const r = m.parse(p.payloadBuf, p.payloadOff, p.payloadLen);
    if (r >= 0) {
      st.rejected[r]++;
      return false;
    }
    st.records++;
    st.kinds[m.kind]++;
    if (m.malformed !== Malformed.None) st.malformed[m.malformed]++;
    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'webrtc';
    const labels = out.labels;
    labels.set('webrtc.kind', KIND_NAMES[m.kind]);
    if (m.kind === Kind.Stun) {
      labels.set('stun.method', METHOD_LABEL[m.stunMethod]);
      labels.set('stun.class', CLASS_NAME[m.stunClass]);
    } else if (m.kind === Kind.Dtls) {
      if (m.dtlsType >= 0) labels.set('dtls.content-type', DECIMAL[m.dtlsType]);
      if (m.dtlsCid) st.dtlsCid++;
    }
    if (this.flows !== null) {
      const f = this.flows;
      const slot = this.lookup(p);
      if (slot >= 0 && f.callIdLength(slot) > 0) {
        labels.setBytes('call-id', f.u8, f.callIdOffset(slot), f.callIdLength(slot));
        // Seqlock: a writer replaced the slot while we copied; drop the label rather than emit a torn one.
        if (!f.stillValid(slot)) labels.delete('call-id');
        else st.registered++;
      }
    }
    out.payload = this.payload;
    return true;
  }

  counters(): Record<string, unknown> {
    return this.stats.toJSON();
  }
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 };

const webrtc: PluginDefinition<'parser', WebrtcConfig> = {
  meta: {
    name: 'webrtc',
    version: '0.1.0',
    kind: 'parser',
    labels: ['webrtc.kind', 'stun.method', 'stun.class', 'dtls.content-type', 'call-id'],
    description: 'WebRTC media plane demultiplexed per RFC 7983: STUN/TURN, DTLS records, SRTP/SRTCP headers, TURN ChannelData.',
    configSchema: {
      type: 'object',
      properties: {
        ports: { type: 'array', items: PORT, uniqueItems: true, default: [3478] },
        port_ranges: {
          type: 'array',
          items: { type: 'array', items: PORT, minItems: 2, maxItems: 2 },
          default: [],
        },
        registered: { type: 'boolean', default: true },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    for (const [lo, hi] of ctx.config.port_ranges) {
      if (lo > hi) throw new Error(`${ctx.where}: port_ranges: [${lo}, ${hi}] is empty (low > high)`);
    }
    return new WebrtcParser(ctx.config, ctx.flows ?? null);
  },
};

export default webrtc;

// What tshark says each frame of a capture should decode to, in the terms of
// the `otus decode` output contract (docs/decode-output.md).
//
// tshark is run with `-T pdml` because the contract needs layer structure
// that flat `-T fields` output loses: which IP header is the innermost one of
// the packet proper (ICMP/ICMPv6 errors quote an IP header as a proto nested
// inside the icmp proto; IPv6 extension headers are protos nested inside the
// ipv6 proto; tunnelled layers are top-level protos in wire order).
//
// Walk of the top-level protos, in wire order:
//   link layers (eth, sll, null, raw, vlan, 802.1ad, mpls, pppoe, ppp) → IP
//   IP → udp|tcp|sctp|icmp|icmpv6 (the L4 of that IP) | IP (ipip) | gre
//   gre → [erspan] → link layers → IP;  udp → vxlan|geneve → eth → ... → IP
// Anything else ends the walk: what follows is payload to otus. That is how
// Teredo, GTP, L2TP, MPLS-over-UDP, VXLAN-GPE etc. stay payload, as the
// contract's tunnel list (vxlan, geneve, gre, erspan, ipip) says.
//
// Every expectation is a value or absent (undefined = no opinion). null is a
// value: "tshark dissected this far and the thing is not there".

import { spawn, spawnSync } from 'node:child_process';
import { PdmlParser, type PdmlNode, findField } from './pdml.js';

/** Keys compared, flattened: `tunnel.type` etc. are the tunnel object's members. */
export const KEYS = [
  'ts', 'caplen', 'len', 'src_mac', 'dst_mac', 'vlans',
  'tunnel', 'tunnel.type', 'tunnel.vni', 'tunnel.key', 'tunnel.outer_src', 'tunnel.outer_dst',
  'ip_version', 'src', 'dst', 'proto', 'ttl', 'fragmented', 'reassembly',
  'sport', 'dport', 'tcp_flags', 'payload_len',
] as const;
export type Key = (typeof KEYS)[number];

/** Keys taken from the capture record, not from dissection. */
export const RECORD_KEYS: readonly Key[] = ['ts', 'caplen', 'len'];

export type Value = string | number | boolean | null | number[];

export interface TsharkFrame {
  /** 1-based number among the file's packet records (otus's `frame`). */
  frame: number;
  /** tshark's own frame number; differs from `frame` after a non-packet record. */
  tsharkFrame: number;
  /** True for a pcapng record that is not a packet (Custom Block), which tshark lists as a frame. */
  nonPacket: boolean;
  /** Why tshark considers the frame malformed (first reason), or null. */
  malformed: string | null;
  /** Expected values; a key that is absent has no expectation. */
  exp: Partial<Record<Key, Value>>;
  /** The protocol path tshark walked, e.g. "eth:ip:gre:ip:udp" (for reports). */
  path: string;
}

const EXPERT_ERROR = '8388608'; // PI_ERROR (0x00800000) in _ws.expert.severity

/** Link-layer and shim headers crossed on the way to an IP header. */
const LINK = new Set([
  'eth', 'sll', 'null', 'loop', 'raw', 'vlan', 'ieee8021ad', 'mpls', 'pppoes', 'ppp',
  'pwethcw', 'pwethnocw', 'pwethheuristic',
]);
const META = new Set(['geninfo', 'frame', 'pkt_comment']);
const L4 = new Set(['udp', 'tcp', 'sctp', 'icmp', 'icmpv6']);
/** Protos nested in an ipv6 proto that are part of its header chain. */
const V6_EXT_NXT: Record<string, string> = {
  'ipv6.hopopts': 'ipv6.hopopts.nxt',
  'ipv6.routing': 'ipv6.routing.nxt',
  'ipv6.dstopts': 'ipv6.dstopts.nxt',
  'ipv6.fraghdr': 'ipv6.fraghdr.nxt',
  ah: 'ah.next_header',
};

function num(n: PdmlNode | undefined): number | undefined {
  if (!n) return undefined;
  const s = n.show;
  if (/^0x[0-9a-f]+$/i.test(s)) return parseInt(s.slice(2), 16);
  if (/^-?\d+$/.test(s)) return Number(s);
  return undefined;
}

function str(n: PdmlNode | undefined): string | undefined {
  return n ? n.show : undefined;
}

interface IpLayer {
  node: PdmlNode;
  version: 4 | 6;
  /** The proto after this IP header in the walk (L4, gre, inner IP...), if any. */
  next?: PdmlNode;
  /** True when this IP datagram was reassembled in this frame. */
  reassembled: boolean;
  /** True when this is a fragment whose datagram is not complete here. */
  held: boolean;
  /** Upper-layer protocol after the header chain. */
  proto: number | undefined;
  /** Bytes after the IP header chain (bounded by the IP length fields). */
  payload: number | undefined;
}

function ipLayer(node: PdmlNode): IpLayer {
  if (node.name === 'ip') {
    const reLen = num(findField(node, 'ip.reassembled.length'));
    const mf = num(findField(node, 'ip.flags.mf'));
    const off = num(findField(node, 'ip.frag_offset'));
    const isFrag = (mf ?? 0) !== 0 || (off ?? 0) !== 0;
    const total = num(findField(node, 'ip.len'));
    const hl = num(findField(node, 'ip.hdr_len'));
    return {
      node, version: 4,
      reassembled: reLen !== undefined,
      held: isFrag && reLen === undefined,
      proto: num(findField(node, 'ip.proto')),
      payload: reLen ?? (total !== undefined && hl !== undefined && total >= hl ? total - hl : undefined),
    };
  }
  // IPv6: walk the nested extension-header protos.
  let proto = num(findField(node, 'ipv6.nxt'));
  let extBytes = 0;
  let frag: PdmlNode | undefined;
  for (const c of node.children) {
    if (c.kind !== 'proto') continue;
    const nxt = V6_EXT_NXT[c.name];
    if (nxt) {
      proto = num(findField(c, nxt));
      extBytes += c.size;
      if (c.name === 'ipv6.fraghdr') frag = c;
    } else {
      // e.g. esp, mip6: an upper layer nested by tshark; its number stays as
      // the previous header's next-header value.
      break;
    }
  }
  const reLen = num(findField(node, 'ipv6.reassembled.length'));
  let isFrag = false;
  if (frag) {
    const more = num(findField(frag, 'ipv6.fraghdr.more')) ?? 0;
    const off = num(findField(frag, 'ipv6.fraghdr.offset')) ?? 0;
    isFrag = more !== 0 || off !== 0;
  }
  let plen = num(findField(node, 'ipv6.plen'));
  if (plen === 0) {
    // RFC 2675 jumbogram: the length is in the hop-by-hop Jumbo Payload option.
    const hbh = node.children.find((c) => c.kind === 'proto' && c.name === 'ipv6.hopopts');
    const jumbo = num(hbh && findField(hbh, 'ipv6.opt.jumbo'));
    if (jumbo !== undefined) plen = jumbo;
  }
  return {
    node, version: 6,
    reassembled: reLen !== undefined,
    held: isFrag && reLen === undefined,
    proto,
    payload: reLen ?? (plen !== undefined && plen >= extBytes ? plen - extBytes : undefined),
  };
}

/** The first reason tshark marks this frame malformed, or null. Errors inside ICMP-quoted packets are ignored. */
function malformedReason(protos: PdmlNode[]): string | null {
  let reason: string | null = null;
  const visit = (n: PdmlNode, quoted: boolean): void => {
    if (reason !== null) return;
    if (!quoted && n.name === '_ws.malformed') {
      reason = n.showname || 'Malformed Packet';
      return;
    }
    if (!quoted && n.name === '_ws.expert') {
      const sev = n.children.find((c) => c.name === '_ws.expert.severity');
      if (sev && sev.show === EXPERT_ERROR) {
        reason = n.showname || 'expert error';
        return;
      }
    }
    const icmp = n.kind === 'proto' && (n.name === 'icmp' || n.name === 'icmpv6');
    // The quoted packet of an ICMP error is a proto nested in the icmp proto.
    for (const c of n.children) visit(c, quoted || (icmp && c.kind === 'proto'));
  };
  for (const p of protos) visit(p, false);
  return reason;
}

function epochNs(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return undefined;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}`;
}

/** Expectations for one frame, from its top-level PDML protos. */
export function frameExpectations(protos: PdmlNode[]): TsharkFrame {
  const frameProto = protos.find((p) => p.name === 'frame');
  const exp: Partial<Record<Key, Value>> = {};
  const frameNo = num(frameProto && findField(frameProto, 'frame.number')) ?? 0;
  if (frameProto) {
    const ts = epochNs(str(findField(frameProto, 'frame.time_epoch')));
    if (ts !== undefined) exp.ts = ts;
    const caplen = num(findField(frameProto, 'frame.cap_len'));
    const len = num(findField(frameProto, 'frame.len'));
    if (caplen !== undefined) exp.caplen = caplen;
    if (len !== undefined) exp.len = len;
  }

  // Not layers of the packet: tshark's summary, the frame record, pcapng
  // packet comments, and its own _ws.* annotations.
  const layers = protos.filter((p) => !META.has(p.name) && !p.name.startsWith('_ws.'));
  const path: string[] = [];
  const vlans: number[] = [];
  const ips: IpLayer[] = [];
  let macsDone = false;
  type Tunnel = { type: string; vni: number | null; key: number | null; outer: IpLayer };
  let tunnel: Tunnel | null = null;
  // A GRE header counts as a decoded tunnel only once tshark decoded a layer
  // inside it (keepalives, CDP or Cisco MetaData in GRE are GRE payload).
  let greCandidate: Tunnel | null = null;
  type State = 'link' | 'ip' | 'l4udp' | 'l4' | 'gre' | 'tunnel';
  let state: State = 'link';
  let stoppedAt: string | null = null;

  for (const p of layers) {
    const name = p.name;
    const cur = ips[ips.length - 1];
    if (state === 'gre' && greCandidate && (name === 'ip' || name === 'ipv6' || name === 'erspan' || LINK.has(name))) {
      tunnel = greCandidate;
      greCandidate = null;
    }
    if (name === 'ip' || name === 'ipv6') {
      if (state === 'ip' && cur && !cur.held) {
        if (!tunnel) tunnel = { type: 'ipip', vni: null, key: null, outer: cur };
        cur.next = p;
      } else if (state !== 'link' && state !== 'tunnel' && state !== 'gre') {
        stoppedAt = name;
        break;
      }
      path.push(name);
      ips.push(ipLayer(p));
      state = 'ip';
      if (ips[ips.length - 1]!.held) break; // the rest is fragment payload
      continue;
    }
    if (state === 'ip' && cur) {
      cur.next = p;
      if (L4.has(name)) { path.push(name); state = name === 'udp' ? 'l4udp' : 'l4'; continue; }
      if (name === 'gre') {
        path.push(name);
        if (!tunnel) greCandidate = { type: 'gre', vni: null, key: num(findField(p, 'gre.key')) ?? null, outer: cur };
        state = 'gre';
        continue;
      }
      stoppedAt = name;
      break;
    }
    if (state === 'gre' && name === 'erspan') {
      path.push(name);
      if (tunnel && tunnel.type === 'gre' && tunnel.outer === cur) {
        tunnel.type = 'erspan';
        tunnel.key = num(findField(p, 'erspan.spanid')) ?? null;
      }
      state = 'tunnel';
      continue;
    }
    // VXLAN-GPE (UDP 4790, draft-ietf-nvo3-vxlan-gpe) shares tshark's vxlan
    // dissector; it is not VXLAN (RFC 7348) and stays payload.
    const gpe = name === 'vxlan' && findField(p, 'vxlan.next_proto') !== undefined;
    if (state === 'l4udp' && (name === 'vxlan' || name === 'geneve') && !gpe && cur) {
      path.push(name);
      if (!tunnel) {
        tunnel = { type: name, vni: num(findField(p, `${name}.vni`)) ?? null, key: null, outer: cur };
      }
      state = 'tunnel';
      continue;
    }
    if ((state === 'link' || state === 'tunnel' || state === 'gre') && LINK.has(name)) {
      path.push(name);
      state = state === 'gre' ? 'tunnel' : state;
      if (!macsDone && state === 'link') {
        if (name === 'eth') {
          exp.src_mac = str(findField(p, 'eth.src')) ?? null;
          exp.dst_mac = str(findField(p, 'eth.dst')) ?? null;
          macsDone = true;
        } else if (name === 'sll') {
          // Linux cooked capture: the one address it carries is src_mac.
          const a = findField(p, 'sll.src.eth');
          if (a) exp.src_mac = a.show;
          exp.dst_mac = null;
          macsDone = true;
        } else if (name === 'null' || name === 'loop' || name === 'raw') {
          exp.src_mac = null;
          exp.dst_mac = null;
          macsDone = true;
        }
      }
      if (name === 'vlan') {
        const id = num(findField(p, 'vlan.id'));
        if (id !== undefined) vlans.push(id);
      } else if (name === 'ieee8021ad') {
        const id = num(findField(p, 'ieee8021ad.id'));
        if (id !== undefined) vlans.push(id);
      }
      continue;
    }
    stoppedAt = name;
    break;
  }
  if (!macsDone && layers.length > 0 && (layers[0]!.name === 'ip' || layers[0]!.name === 'ipv6')) {
    // LINKTYPE_IPV4 / LINKTYPE_IPV6: no link header at all.
    exp.src_mac = null;
    exp.dst_mac = null;
  }
  if (stoppedAt) path.push(`(${stoppedAt})`);

  exp.vlans = vlans;
  if (tunnel) {
    exp['tunnel.type'] = tunnel.type;
    exp['tunnel.vni'] = tunnel.vni;
    exp['tunnel.key'] = tunnel.key;
    const o = tunnel.outer.node;
    const v = tunnel.outer.version === 4 ? 'ip' : 'ipv6';
    const os = str(findField(o, `${v}.src`));
    const od = str(findField(o, `${v}.dst`));
    if (os !== undefined) exp['tunnel.outer_src'] = os;
    if (od !== undefined) exp['tunnel.outer_dst'] = od;
  } else {
    exp.tunnel = null;
  }

  const ip = ips[ips.length - 1];
  exp.fragmented = ips.some((l) => l.reassembled);
  exp.reassembly = ip && ip.held ? 'held' : null;
  if (!ip) {
    for (const k of ['ip_version', 'src', 'dst', 'proto', 'ttl', 'sport', 'dport', 'tcp_flags', 'payload_len'] as const) exp[k] = null;
  } else {
    const v = ip.version === 4 ? 'ip' : 'ipv6';
    exp.ip_version = ip.version;
    // A field cut off by the capture length gives no expectation (not null).
    const src = str(findField(ip.node, `${v}.src`));
    const dst = str(findField(ip.node, `${v}.dst`));
    const ttl = num(findField(ip.node, ip.version === 4 ? 'ip.ttl' : 'ipv6.hlim'));
    if (src !== undefined) exp.src = src;
    if (dst !== undefined) exp.dst = dst;
    if (ttl !== undefined) exp.ttl = ttl;
    if (ip.proto !== undefined) exp.proto = ip.proto;
    const l4 = ip.next && L4.has(ip.next.name) && !ip.held ? ip.next : undefined;
    exp.sport = null;
    exp.dport = null;
    exp.tcp_flags = null;
    let payload: number | undefined = ip.payload;
    if (l4) {
      const n = l4.name;
      if (n === 'udp' || n === 'tcp' || n === 'sctp') {
        const sp = num(findField(l4, `${n}.srcport`));
        const dp = num(findField(l4, `${n}.dstport`));
        if (sp === undefined) delete exp.sport; else exp.sport = sp;
        if (dp === undefined) delete exp.dport; else exp.dport = dp;
      }
      if (n === 'udp') {
        const ul = num(findField(l4, 'udp.length'));
        payload = ul !== undefined && ul >= 8 ? ul - 8 : undefined;
      } else if (n === 'tcp') {
        const f = num(findField(l4, 'tcp.flags'));
        if (f === undefined) delete exp.tcp_flags; else exp.tcp_flags = f & 0x0fff;
        payload = num(findField(l4, 'tcp.len'));
      } else if (n === 'sctp') {
        payload = payload !== undefined && payload >= 12 ? payload - 12 : undefined;
      } else {
        payload = payload !== undefined && payload >= 8 ? payload - 8 : undefined;
      }
    }
    // A held fragment's L4 fields, payload_len among them, are null (contract).
    if (ip.held) exp.payload_len = null;
    else if (payload !== undefined) exp.payload_len = payload;
  }

  const nonPacket = frameProto !== undefined && findField(frameProto, 'frame.cb_pen') !== undefined;
  return { frame: frameNo, tsharkFrame: frameNo, nonPacket, malformed: malformedReason(protos), exp, path: path.join(':') };
}

/** tshark's version line, or null when tshark cannot be run. */
export function tsharkVersion(bin = 'tshark'): string | null {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return r.stdout.split('\n')[0] ?? '';
}

/** Fixed preferences, so that a user's wireshark profile cannot change the expectations. */
export const BASE_ARGS = [
  '-n',
  '-o', 'ip.defragment:TRUE',
  '-o', 'ipv6.defragment:TRUE',
  '-o', 'tcp.check_checksum:FALSE',
  '-o', 'udp.check_checksum:FALSE',
];

/**
 * Runs tshark on `file` and returns one TsharkFrame per packet record, in
 * file order. tshark 4.0 also lists pcapng Custom Blocks as frames; they are
 * dropped and the packets renumbered, as otus numbers packets only.
 */
export function runTshark(file: string, decodeAs: readonly string[] = [], bin = 'tshark'): Promise<TsharkFrame[]> {
  return new Promise((resolve, reject) => {
    const frames: TsharkFrame[] = [];
    const parser = new PdmlParser((protos) => {
      const f = frameExpectations(protos);
      if (f.nonPacket) return;
      f.frame = frames.length + 1;
      frames.push(f);
    });
    const child = spawn(bin, [...BASE_ARGS, ...decodeAs, '-r', file, '-T', 'pdml'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => parser.push(d));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => { if (stderr.length < 4000) stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      // tshark 4.0 lists a record cut short by the end of the file as a
      // frame (and then says so); libpcap, like otus, delivers no such record.
      const cutShort = /cut short in the middle of a packet/.test(stderr);
      if (cutShort && frames.length > 0) frames.pop();
      // tshark exits 2 on a damaged file; the frames it printed still count.
      if (code !== 0 && frames.length === 0 && !cutShort) {
        reject(new Error(`tshark exited ${code} on ${file}: ${stderr.replace(/Running as user.*\n/, '').trim()}`));
      } else {
        resolve(frames);
      }
    });
  });
}


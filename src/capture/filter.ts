// Task filters (docs/task-format.md) to classic BPF. A structured filter becomes
// libpcap filter text, and text is compiled by libpcap (pcap_compile on a
// dead handle) into the program the kernel runs (SO_ATTACH_FILTER).
//
// Fragments: later IP fragments carry no transport header, so `port 5060`
// rejects them, and a fragmented INVITE is lost. A structured filter with a
// protocol or ports therefore also passes the fragments of the matching hosts:
//   IPv4 non-first fragments (offset != 0) of the protocol, and
//   IPv6 packets whose first header is a Fragment header (libpcap's `port`
//   does not walk IPv6 extension headers, so even the first fragment needs it).

import { isIP } from 'node:net';
import { native } from '../native.js';
import { OtusError } from '../util/errors.js';

export interface StructuredFilter {
  src_ip?: string[];
  dst_ip?: string[];
  ports?: number[];
  /** "LOW-HIGH" */
  port_range?: string;
  protocol?: 'udp' | 'tcp' | 'any';
}

interface Net {
  text: string;
  v6: boolean;
}

function parseCidr(field: string, s: unknown): Net {
  if (typeof s !== 'string') throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `filter.${field}: expected CIDR strings, got ${JSON.stringify(s)}`);
  const [addr, len, extra] = s.split('/');
  const fam = isIP(addr ?? '');
  const max = fam === 6 ? 128 : 32;
  const bits = len === undefined ? max : Number(len);
  if (fam === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > max || (len !== undefined && !/^\d+$/.test(len))) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `filter.${field}: "${s}" is not an IPv4/IPv6 address or CIDR`);
  }
  return { text: `${addr}/${bits}`, v6: fam === 6 };
}

function hostClause(dir: 'src' | 'dst', nets: Net[]): string {
  const parts = nets.map((n) => `${dir} net ${n.text}`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(' or ')})`;
}

/** libpcap filter text for a structured filter. Empty string = everything. */
export function structuredFilterText(f: StructuredFilter): string {
  const known = new Set(['src_ip', 'dst_ip', 'ports', 'port_range', 'protocol']);
  for (const k of Object.keys(f)) if (!known.has(k)) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `filter.${k}: unknown key (known: ${[...known].join(', ')})`);
  const src = (f.src_ip ?? []).map((s) => parseCidr('src_ip', s));
  const dst = (f.dst_ip ?? []).map((s) => parseCidr('dst_ip', s));
  const proto = f.protocol ?? 'any';
  if (proto !== 'udp' && proto !== 'tcp' && proto !== 'any') {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `filter.protocol: expected udp, tcp or any, got ${JSON.stringify(proto)}`);
  }
  const ports: string[] = [];
  for (const p of f.ports ?? []) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `filter.ports: ${JSON.stringify(p)} is not a port`);
    ports.push(`port ${p}`);
  }
  if (f.port_range !== undefined) {
    const m = /^(\d{1,5})-(\d{1,5})$/.exec(String(f.port_range));
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2]) : NaN;
    if (!m || lo > hi || hi > 65535) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `filter.port_range: expected "LOW-HIGH" within 0-65535, got ${JSON.stringify(f.port_range)}`);
    ports.push(`portrange ${lo}-${hi}`);
  }

  // Whole packets: hosts and protocol and ports.
  const hosts = (nets: { src: Net[]; dst: Net[] }): string[] => {
    const h: string[] = [];
    if (nets.src.length) h.push(hostClause('src', nets.src));
    if (nets.dst.length) h.push(hostClause('dst', nets.dst));
    return h;
  };
  const main = hosts({ src, dst });
  if (ports.length) {
    const alt = ports.length === 1 ? ports[0]! : `(${ports.join(' or ')})`;
    main.push(proto === 'any' ? alt : `${proto} and ${alt}`);
  } else if (proto !== 'any') {
    main.push(proto);
  }
  if (main.length === 0) return '';
  const whole = main.join(' and ');
  if (!ports.length && proto === 'any') return whole; // no transport condition: fragments already pass

  // Fragments of the matching hosts, per address family present in the host lists.
  const alts = [`(${whole})`];
  const pnum = proto === 'udp' ? 17 : proto === 'tcp' ? 6 : -1;
  const family = (v6: boolean): { src: Net[]; dst: Net[] } | null => {
    const s = src.filter((n) => n.v6 === v6);
    const d = dst.filter((n) => n.v6 === v6);
    if ((src.length && !s.length) || (dst.length && !d.length)) return null; // a list names no host of this family
    return { src: s, dst: d };
  };
  const v4 = family(false);
  if (v4) {
    const c = ['ip[6:2] & 0x1fff != 0'];
    if (pnum >= 0) c.push(`ip[9] = ${pnum}`);
    alts.push(`(${[...c, ...hosts(v4)].join(' and ')})`);
  }
  const v6 = family(true);
  if (v6) {
    const c = ['ip6[6] = 44'];
    if (pnum >= 0) c.push(`ip6[40] = ${pnum}`);
    alts.push(`(${[...c, ...hosts(v6)].join(' and ')})`);
  }
  return alts.join(' or ');
}

/** The filter text a task filter stands for ('' = everything). */
export function filterText(f: string | StructuredFilter | null): string {
  if (f === null) return '';
  if (typeof f === 'string') return f.trim();
  return structuredFilterText(f);
}

/** Classic BPF for `text` on `linkType` (a DLT value); the program also truncates to snaplen. */
export function compileFilter(text: string, snaplen: number, dlt: number): Buffer {
  try {
    return native.compileBpf(text, snaplen, dlt);
  } catch (err) {
    const e = err as { pcapError?: string; message?: string };
    throw new OtusError('OTUS_ERR_FILTER', `filter "${text}": ${e.pcapError ?? e.message}`);
  }
}

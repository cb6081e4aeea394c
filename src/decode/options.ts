// Decoder configuration (docs/architecture.md, "The path of one packet", `otus.core.decoder`). Tunnels are off
// by default: whether outer headers should be peeled depends on where Otus
// captures. VLAN/QinQ and IP reassembly are always on.

import { OtusError } from '../util/errors.js';

export interface TunnelSwitches {
  vxlan: boolean;
  gre: boolean;
  erspan: boolean;
  geneve: boolean;
  ipip: boolean;
}

export interface DecoderOptions {
  tunnels: TunnelSwitches;
  /** UDP destination ports decoded as VXLAN. */
  vxlanPorts: number[];
  /** UDP destination ports decoded as Geneve. */
  genevePorts: number[];
  /** Tunnels nested deeper than this are an error. */
  maxTunnelDepth: number;
  reassembly: {
    /** Incomplete datagrams are dropped this long after their first fragment. */
    timeoutMs: number;
    /** Datagrams under reassembly at once; the oldest is evicted beyond this. */
    maxDatagrams: number;
    /** Bytes held in fragments at once; the oldest datagrams are evicted beyond this. */
    maxMemoryBytes: number;
    /** Fragments per datagram. */
    maxFragments: number;
  };
}

export const TUNNEL_KINDS = ['vxlan', 'gre', 'erspan', 'geneve', 'ipip'] as const;

export function defaultDecoderOptions(): DecoderOptions {
  return {
    tunnels: { vxlan: false, gre: false, erspan: false, geneve: false, ipip: false },
    vxlanPorts: [4789],
    genevePorts: [6081],
    maxTunnelDepth: 4,
    reassembly: {
      timeoutMs: 30_000, // Linux's ipfrag_time
      maxDatagrams: 10_000,
      maxMemoryBytes: 64 * 1024 * 1024,
      maxFragments: 1024,
    },
  };
}

/** Parses a port list such as `4789,8472` (as given to --vxlan-ports). */
export function parsePortList(text: string, what: string): number[] {
  const ports = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  return ports.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${what}: "${p}" is not a port number (1-65535)`);
    }
    return n;
  });
}

/** Parses `vxlan,gre,...` or `all` (as given to --tunnels). */
export function parseTunnelList(text: string, what = '--tunnels'): TunnelSwitches {
  const t: TunnelSwitches = { vxlan: false, gre: false, erspan: false, geneve: false, ipip: false };
  for (const raw of text.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'all') {
      for (const k of TUNNEL_KINDS) t[k] = true;
    } else if ((TUNNEL_KINDS as readonly string[]).includes(name)) {
      t[name as keyof TunnelSwitches] = true;
    } else {
      throw new OtusError(
        'OTUS_ERR_BAD_ARGUMENT',
        `${what}: unknown tunnel type "${name}" (expected ${TUNNEL_KINDS.join(', ')} or all)`,
      );
    }
  }
  return t;
}

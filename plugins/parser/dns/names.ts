// Mnemonics of DNS numbers (IANA "Domain Name System (DNS) Parameters"):
// RR types, classes, EDNS(0) option codes, SVCB/HTTPS parameter keys. Made
// once at load; a number without a mnemonic prints as RFC 3597 says
// (TYPE<n>, CLASS<n>) or, for options and keys, as its decimal number.

import { ascii } from '../../../src/util/bytes.js';

const TYPES: [number, string][] = [
  [1, 'A'], [2, 'NS'], [3, 'MD'], [4, 'MF'], [5, 'CNAME'], [6, 'SOA'], [7, 'MB'], [8, 'MG'], [9, 'MR'], [10, 'NULL'],
  [11, 'WKS'], [12, 'PTR'], [13, 'HINFO'], [14, 'MINFO'], [15, 'MX'], [16, 'TXT'], [17, 'RP'], [18, 'AFSDB'], [19, 'X25'],
  [20, 'ISDN'], [21, 'RT'], [22, 'NSAP'], [23, 'NSAP-PTR'], [24, 'SIG'], [25, 'KEY'], [26, 'PX'], [27, 'GPOS'], [28, 'AAAA'],
  [29, 'LOC'], [30, 'NXT'], [31, 'EID'], [32, 'NIMLOC'], [33, 'SRV'], [34, 'ATMA'], [35, 'NAPTR'], [36, 'KX'], [37, 'CERT'],
  [38, 'A6'], [39, 'DNAME'], [40, 'SINK'], [41, 'OPT'], [42, 'APL'], [43, 'DS'], [44, 'SSHFP'], [45, 'IPSECKEY'], [46, 'RRSIG'],
  [47, 'NSEC'], [48, 'DNSKEY'], [49, 'DHCID'], [50, 'NSEC3'], [51, 'NSEC3PARAM'], [52, 'TLSA'], [53, 'SMIMEA'], [55, 'HIP'],
  [56, 'NINFO'], [57, 'RKEY'], [58, 'TALINK'], [59, 'CDS'], [60, 'CDNSKEY'], [61, 'OPENPGPKEY'], [62, 'CSYNC'], [63, 'ZONEMD'],
  [64, 'SVCB'], [65, 'HTTPS'], [99, 'SPF'], [100, 'UINFO'], [101, 'UID'], [102, 'GID'], [103, 'UNSPEC'], [104, 'NID'],
  [105, 'L32'], [106, 'L64'], [107, 'LP'], [108, 'EUI48'], [109, 'EUI64'], [249, 'TKEY'], [250, 'TSIG'], [251, 'IXFR'],
  [252, 'AXFR'], [253, 'MAILB'], [254, 'MAILA'], [255, 'ANY'], [256, 'URI'], [257, 'CAA'], [258, 'AVC'], [259, 'DOA'],
  [260, 'AMTRELAY'], [261, 'RESINFO'], [32768, 'TA'], [32769, 'DLV'],
];

/**
 * Mnemonics by 16-bit number, '' when none: an array up to the last number
 * named below 1024, a Map beyond. (An array of all 65536 was 512 KiB in every
 * process that loads this parser, and the plugin registry loads it in all.)
 */
export class Names {
  private readonly low: string[];
  private readonly high = new Map<number, string>();
  constructor(pairs: [number, string][]) {
    const dense = pairs.filter(([n]) => n < 1024);
    this.low = new Array<string>(Math.max(0, ...dense.map(([n]) => n + 1))).fill('');
    for (const [n, s] of pairs) {
      if (n < 1024) this.low[n] = s;
      else this.high.set(n, s);
    }
  }
  get(n: number): string {
    return n < this.low.length ? this.low[n]! : (this.high.get(n) ?? '');
  }
}

/** Type mnemonic by number, '' when none (print TYPE<n>). */
export const TYPE_NAME = new Names(TYPES);

const CLASSES: [number, string][] = [[1, 'IN'], [3, 'CH'], [4, 'HS'], [254, 'NONE'], [255, 'ANY']];
export const CLASS_NAME = new Names(CLASSES);

const OPTIONS: [number, string][] = [
  [1, 'LLQ'], [2, 'UL'], [3, 'NSID'], [5, 'DAU'], [6, 'DHU'], [7, 'N3U'], [8, 'ECS'], [9, 'EXPIRE'], [10, 'COOKIE'],
  [11, 'TCP-KEEPALIVE'], [12, 'PADDING'], [13, 'CHAIN'], [14, 'KEY-TAG'], [15, 'EDE'], [16, 'CLIENT-TAG'], [17, 'SERVER-TAG'],
  [18, 'REPORT-CHANNEL'], [19, 'ZONEVERSION'],
];
export const OPTION_NAME = new Names(OPTIONS);

// RFC 9460 §14.3.2
const SVC_KEYS = ['mandatory', 'alpn', 'no-default-alpn', 'port', 'ipv4hint', 'ech', 'ipv6hint', 'dohpath', 'ohttp'];
/** Pre-encoded JSON keys `"name":` of SVCB params 0..8; others are written as `"key<n>":` (RFC 9460 §2.1). */
export const SVC_KEY_JSON: Uint8Array[] = SVC_KEYS.map((k) => ascii(`"${k}":`));
export const SVC_KEY_TEXT: Uint8Array[] = SVC_KEYS.map((k) => ascii(`"${k}"`));

/** Label values that are small numbers, made once (rcode 0..15, qr 0/1). */
export const SMALL_DECIMAL: string[] = Array.from({ length: 256 }, (_, i) => String(i));

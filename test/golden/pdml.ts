// A small streaming reader for tshark's PDML (`tshark -T pdml`): one tree per
// packet, handed to a callback as soon as `</packet>` is seen, so a capture of
// any size is read in bounded memory. PDML is what tshark writes, not general
// XML: every element is <pdml>, <packet>, <proto> or <field>; attribute values
// are quoted and escaped (no raw `>` or `"` inside them); there is no text
// content. That is all this reader handles.

export interface PdmlNode {
  /** 'proto' or 'field'. */
  kind: 'proto' | 'field';
  name: string;
  /** The `show` attribute (display value), '' when absent. */
  show: string;
  /** The `value` attribute (raw hex), '' when absent. */
  value: string;
  /** The `showname` attribute, '' when absent. */
  showname: string;
  /** Byte offset in the frame (or in the reassembled buffer), -1 when absent. */
  pos: number;
  /** Byte length, -1 when absent. */
  size: number;
  /** True for hide="yes" fields (duplicates such as ip.addr). */
  hidden: boolean;
  children: PdmlNode[];
}

const TAG = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.:-]+="[^"]*")*)\s*(\/?)>/g;
const ATTR = /([\w.:-]+)="([^"]*)"/g;

function unescapeXml(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    switch (e) {
      case 'lt': return '<';
      case 'gt': return '>';
      case 'amp': return '&';
      case 'quot': return '"';
      case 'apos': return "'";
      default:
        return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

function makeNode(kind: 'proto' | 'field', attrs: string): PdmlNode {
  const n: PdmlNode = { kind, name: '', show: '', value: '', showname: '', pos: -1, size: -1, hidden: false, children: [] };
  ATTR.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = ATTR.exec(attrs)) !== null) {
    const v = m[2]!;
    switch (m[1]) {
      case 'name': n.name = v; break;
      case 'show': n.show = unescapeXml(v); break;
      case 'value': n.value = v; break;
      case 'showname': n.showname = unescapeXml(v); break;
      case 'pos': n.pos = Number(v); break;
      case 'size': n.size = Number(v); break;
      case 'hide': n.hidden = v === 'yes'; break;
    }
  }
  return n;
}

/**
 * Incremental PDML parser. Feed it text chunks with push(); each complete
 * packet is passed to onPacket as the list of its top-level <proto> nodes.
 */
export class PdmlParser {
  private buf = '';
  private stack: PdmlNode[] = [];
  private packet: PdmlNode[] | null = null;

  constructor(private readonly onPacket: (protos: PdmlNode[]) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    let last = 0;
    TAG.lastIndex = 0;
    let m: RegExpExecArray | null;
    // A tag is complete once its closing '>' has arrived; keep the tail.
    const end = this.buf.lastIndexOf('>');
    if (end < 0) return;
    const text = this.buf.slice(0, end + 1);
    while ((m = TAG.exec(text)) !== null) {
      last = TAG.lastIndex;
      const closing = m[1] === '/';
      const tag = m[2]!;
      const selfClosing = m[4] === '/';
      if (tag === 'packet') {
        if (closing) {
          if (this.packet) this.onPacket(this.packet);
          this.packet = null;
          this.stack.length = 0;
        } else {
          this.packet = [];
          this.stack.length = 0;
        }
        continue;
      }
      if (tag !== 'proto' && tag !== 'field') continue;
      if (closing) {
        this.stack.pop();
        continue;
      }
      if (!this.packet) continue;
      const node = makeNode(tag, m[3] ?? '');
      const parent = this.stack[this.stack.length - 1];
      if (parent) parent.children.push(node);
      else if (tag === 'proto') this.packet.push(node);
      else continue; // a field outside any proto does not occur in PDML
      if (!selfClosing) this.stack.push(node);
    }
    this.buf = this.buf.slice(Math.max(last, 0));
  }
}

/** Parses a whole PDML document (for tests of this module). */
export function parsePdml(text: string): PdmlNode[][] {
  const out: PdmlNode[][] = [];
  const p = new PdmlParser((protos) => out.push(protos));
  p.push(text);
  return out;
}

/** Depth-first search for the first descendant named `name` (the node itself excluded). */
export function findField(node: PdmlNode, name: string): PdmlNode | undefined {
  for (const c of node.children) {
    if (c.name === name) return c;
    if (c.kind === 'field') {
      const d = findField(c, name);
      if (d) return d;
    }
  }
  return undefined;
}

/** True when any node below `node` (fields and nested protos) satisfies `pred`. */
export function anyBelow(node: PdmlNode, pred: (n: PdmlNode) => boolean): boolean {
  for (const c of node.children) {
    if (pred(c) || anyBelow(c, pred)) return true;
  }
  return false;
}

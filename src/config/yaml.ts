// Reading YAML configuration safely, shared by task files and the global
// configuration: a size limit before parsing, an alias limit when the
// document becomes values (so an alias bomb is a coded error, not a
// ReferenceError or an exhausted heap), no YAML 1.1 tags (!!binary and the
// like), and a line number for any key path, so each error can say
// `FILE:LINE: key.path: what was expected`.

import { closeSync, openSync, readSync } from 'node:fs';
import { type Document, isAlias, isMap, isNode, isScalar, isSeq, LineCounter, type Pair, parseDocument, type YAMLMap } from 'yaml';
import { OtusError, type OtusErrorCode } from '../util/errors.js';
import { pointerToPath, rootAjvError, type ValidateFunction } from './schema.js';

/** The largest file read by default (task files and the global configuration). */
export const MAX_FILE_BYTES = 1 << 20;
/** yaml's maxAliasCount: how many nodes aliases may expand to, all together. */
export const MAX_ALIAS_COUNT = 100;
/** The most of an offending value an error message quotes. */
export const QUOTE_BYTES = 200;

export type KeyPath = readonly (string | number)[];

/** `s`, cut to about `max` bytes with an ellipsis: values quoted in messages stay short. */
export function clip(s: string, max = QUOTE_BYTES): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = s.slice(0, max);
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  return `${out}…`;
}

/** `otus.tasks[1].parsers[0]` from its segments. */
export function keyPath(segs: KeyPath): string {
  return pointerToPath(segs.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')).replace(/^\./, '');
}

/** Reads at most `maxBytes` of a file; bigger is an error before anything is parsed. */
export function readLimited(file: string, code: OtusErrorCode, what: string, maxBytes = MAX_FILE_BYTES): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new OtusError(code, `${file}: cannot read ${what} (${(e as Error).message})`);
  }
  try {
    // One byte more than allowed tells "too big" apart from "exactly the limit", for pipes too.
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > maxBytes) throw tooBig(file, code, what, maxBytes);
    }
    return buf.toString('utf8', 0, n);
  } catch (e) {
    if (e instanceof OtusError) throw e;
    throw new OtusError(code, `${file}: cannot read ${what} (${(e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

function tooBig(file: string, code: OtusErrorCode, what: string, maxBytes: number): OtusError {
  return new OtusError(code, `${file}: the ${what} is larger than ${maxBytes} bytes, the most that is read`);
}

/** A parsed YAML file: its values, and the line of any key path for error messages. */
export class YamlSource {
  constructor(
    readonly file: string,
    readonly code: OtusErrorCode,
    readonly doc: Document,
    private readonly lc: LineCounter,
  ) {}

  /**
   * The line of the deepest part of `segs` found in the document: a map key's
   * own line (where its name is written), a sequence item's first line.
   * With `inside`, the last step's value instead (where a missing key would go).
   * Aliases are not followed: their own line is as far as it goes.
   */
  lineOf(segs: KeyPath, inside = false): number | undefined {
    const lineAt = (n: unknown): number | undefined => (isNode(n) && n.range ? this.lc.linePos(n.range[0]).line : undefined);
    let node: unknown = this.doc.contents;
    let line = lineAt(node);
    for (const [i, seg] of segs.entries()) {
      if (isMap(node)) {
        const pair = pairFor(node, seg);
        if (!pair) break;
        node = pair.value;
        line = (inside && i === segs.length - 1 ? lineAt(node) : undefined) ?? lineAt(pair.key) ?? line;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        line = lineAt(node) ?? line;
      } else break;
      if (isAlias(node)) break;
    }
    return line;
  }

  /** Whether the value at `segs` is a plain (unquoted) scalar; aliases followed. */
  isPlain(segs: KeyPath): boolean {
    let node: unknown = this.doc.contents;
    for (const seg of segs) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) node = pairFor(node, seg)?.value;
      else if (isSeq(node) && typeof seg === 'number') node = node.items[seg];
      else return false;
    }
    if (isAlias(node)) node = node.resolve(this.doc);
    return isScalar(node) && node.type === 'PLAIN';
  }

  /** `FILE:LINE` (or `FILE` when the line is unknown). */
  at(segs: KeyPath, inside = false): string {
    const line = this.lineOf(segs, inside);
    return line ? `${this.file}:${line}` : this.file;
  }

  /** The coded error `FILE:LINE: key.path: message`. */
  error(segs: KeyPath, message: string): OtusError {
    return new OtusError(this.code, `${this.at(segs)}: ${segs.length ? keyPath(segs) : 'top level'}: ${message}`);
  }

  /** The first error of a failed ajv validation, located in this file. */
  schemaError(validate: ValidateFunction): OtusError {
    const segs = ajvErrorSegments(validate);
    const missing = validate.errors?.[0]?.keyword === 'required';
    return new OtusError(this.code, `${this.at(segs, missing)}: ${rootAjvError(validate.errors)}`);
  }
}

function pairFor(map: YAMLMap, seg: string | number): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
}

/** The key path of ajv's first error; for an unknown key, the key itself. */
export function ajvErrorSegments(validate: ValidateFunction): (string | number)[] {
  const err = validate.errors?.[0];
  if (!err) return [];
  const segs: (string | number)[] = err.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  if (err.keyword === 'additionalProperties') segs.push(String(err.params.additionalProperty));
  if (err.propertyName !== undefined) segs.push(err.propertyName);
  return segs;
}

/**
 * Parses one YAML document (refused over `maxBytes`) into plain values.
 * Every problem is an OtusError with `code` naming the file and its line.
 */
export function parseYaml(text: string, file: string, code: OtusErrorCode, what: string, maxBytes = MAX_FILE_BYTES): { src: YamlSource; data: unknown } {
  if (Buffer.byteLength(text) > maxBytes) throw tooBig(file, code, what, maxBytes);
  const lc = new LineCounter();
  // resolveKnownTags: false: YAML 1.1 tags (!!binary, !!set, !!timestamp...) are refused below, not turned into Buffers and Sets.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, resolveKnownTags: false });
  const bad = doc.errors[0] ?? doc.warnings[0];
  if (bad) {
    const line = lc.linePos(bad.pos[0]).line;
    throw new OtusError(code, `${file}${line ? `:${line}` : ''}: not valid YAML: ${clip(bad.message.split('\n')[0])}`);
  }
  const src = new YamlSource(file, code, doc, lc);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // yaml throws ReferenceError for an alias bomb, and for an alias to an anchor not defined before it.
    if (e instanceof ReferenceError && /excessive alias/i.test(e.message)) {
      throw new OtusError(code, `${file}: aliases refused: they expand to more than ${MAX_ALIAS_COUNT} nodes (an alias bomb?)`);
    }
    if (e instanceof ReferenceError) throw new OtusError(code, `${file}: not valid YAML: ${clip(e.message)}`);
    throw e;
  }
  return { src, data };
}

/**
 * YAML's empty values, read as people write them: a key with nothing after
 * it (`metrics:` alone, its keys commented out) is as good as absent, so its
 * default applies, unless the schema allows null there; a map entry or list
 * item with nothing, where a map is expected (`console:` under `reporters:`),
 * is an empty map. Modifies `data` in place.
 */
export function nullsAsAbsent(schema: unknown, data: unknown): unknown {
  const s = schema as Sub | undefined;
  if (!s || typeof s !== 'object' || data === null || typeof data !== 'object') return data;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) data[i] = data[i] === null && s.items?.type === 'object' ? {} : nullsAsAbsent(s.items, data[i]);
    return data;
  }
  const o = data as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const named = s.properties?.[k];
    const sub = named ?? (typeof s.additionalProperties === 'object' ? (s.additionalProperties as Sub | null) : undefined);
    if (!sub) continue;
    if (o[k] !== null || sub.type === 'null' || (Array.isArray(sub.type) && sub.type.includes('null'))) nullsAsAbsent(sub, o[k]);
    // A required map (`task:`) stays, empty, so the error names what it lacks.
    else if (sub.type === 'object' && (!named || s.required?.includes(k))) o[k] = {};
    else if (named) delete o[k];
  }
  return data;
}

interface Sub {
  type?: unknown;
  required?: readonly string[];
  properties?: Record<string, Sub>;
  additionalProperties?: unknown;
  items?: Sub;
}

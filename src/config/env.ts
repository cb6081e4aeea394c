// `${NAME}` in the global configuration: environment variables, expanded in
// string values after YAML parsing (never in the raw text, so a variable can
// never add keys or structure). `${NAME:-default}` when NAME is unset or
// empty, `$${` for a literal `${`. Keys are not expanded.

import { parse } from 'yaml';
import type { KeyPath } from './yaml.js';
import { clip } from './yaml.js';

const REF = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/** What expansion needs from its caller: a way to fail at a key, and whether a key's scalar was written plain (unquoted). */
export interface ExpandContext {
  env: NodeJS.ProcessEnv;
  fail(segs: KeyPath, message: string): never;
  isPlain(segs: KeyPath): boolean;
}

/** One string: null when it holds no `${` or `$${` (the common case: nothing to do). */
export function expandString(s: string, env: NodeJS.ProcessEnv, fail: (message: string) => never): string | null {
  if (!s.includes('${')) return null;
  let out = '';
  let i = 0;
  for (;;) {
    const at = s.indexOf('${', i);
    if (at < 0) return out + s.slice(i);
    if (at > 0 && s[at - 1] === '$') {
      out += s.slice(i, at - 1) + '${';
      i = at + 2;
      continue;
    }
    const end = s.indexOf('}', at + 2);
    if (end < 0) fail(`"${clip(s.slice(at))}" has no closing "}" (write $\${ for a literal \${)`);
    const m = REF.exec(s.slice(at + 2, end));
    if (!m) fail(`"${clip(s.slice(at, end + 1))}" is not \${NAME} or \${NAME:-default} (NAME: letters, digits, _; write $\${ for a literal \${)`);
    const v = env[m[1]];
    let val: string;
    if (m[2] !== undefined) val = v === undefined || v === '' ? m[2] : v;
    else if (v === undefined) fail(`environment variable ${clip(m[1])} is not set (write \${${clip(m[1])}:-default} to give a default)`);
    else val = v;
    out += s.slice(i, at) + val;
    i = end + 1;
  }
}

/**
 * A copy of `data` with every string value expanded. An unquoted scalar made
 * of a reference is then read as YAML reads a plain scalar, but only into a
 * number or a boolean (`workers: ${N}` with N=4 is 4; quote it to keep a
 * string): nothing an expansion yields can become a map or a list.
 */
export function expandEnv(data: unknown, ctx: ExpandContext, segs: (string | number)[] = []): unknown {
  if (typeof data === 'string') {
    const out = expandString(data, ctx.env, (msg) => ctx.fail(segs, msg));
    if (out === null) return data;
    if (ctx.isPlain(segs)) {
      const typed = plainScalar(out);
      if (typed !== undefined) return typed;
    }
    return out;
  }
  if (Array.isArray(data)) return data.map((v, i) => expandEnv(v, ctx, [...segs, i]));
  if (data !== null && typeof data === 'object' && Object.getPrototypeOf(data) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(data)) Object.defineProperty(out, k, { value: expandEnv(v, ctx, [...segs, k]), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return data;
}

// YAML 1.2 core's booleans, integers and floats, whole: only these are retyped.
const SCALAR = /^(?:true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$/;

function plainScalar(text: string): number | boolean | undefined {
  if (!SCALAR.test(text)) return undefined;
  const v: unknown = parse(text, { schema: 'core' });
  return typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) ? v : undefined;
}

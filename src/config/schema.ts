// JSON Schema validation shared by the task loader and the plugin registry:
// one ajv per use, schemas compiled once, and errors turned into a key path
// (`task.processors[0].config.rules[1].action`) a user can find in YAML.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** Ajv for configs: defaults applied, unknown schema keywords rejected (a typo in a schema is an error). */
export function makeAjv(): Ajv {
  return new Ajv({
    allErrors: false,
    useDefaults: true,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
  });
}

/** JSON pointer `/rules/0/action` → `.rules[0].action`. */
export function pointerToPath(ptr: string): string {
  if (ptr === '') return '';
  let out = '';
  for (const raw of ptr.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : /^[A-Za-z_][\w-]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The first error as `BASE.path.to.key: message`. */
export function describeAjvError(base: string, errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return `${base}: invalid`;
  let path = base + pointerToPath(e.instancePath);
  let msg = e.message ?? 'invalid';
  const p = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) {
    // A key's name fails `propertyNames`: name the key, say it is the name that is wrong.
    path += pointerToPath(`/${e.propertyName.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    msg = `the key's name ${msg}`;
  } else if (e.keyword === 'type' && Array.isArray(p.type)) {
    msg = `must be ${(p.type as string[]).join(' or ')}`;
  } else if (e.keyword === 'required') {
    path += `.${String(p.missingProperty)}`;
    msg = 'is required';
  } else if (e.keyword === 'additionalProperties') {
    path += `.${String(p.additionalProperty)}`;
    msg = 'is not a known key';
  } else if (e.keyword === 'enum') {
    msg = `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `${path}: ${msg}`;
}

export type { ValidateFunction };

/** The first error as `path.to.key: message` from the document's root (`top level: message` for the root itself). */
export function rootAjvError(errors: ErrorObject[] | null | undefined): string {
  return describeAjvError('', errors).replace(/^\./, '').replace(/^:/, 'top level:');
}

/** A copy of `data` with object keys in the order the schema lists them (then any others): effective configs print in the documented order. */
export function inSchemaOrder(schema: unknown, data: unknown): unknown {
  const s = schema as { properties?: Record<string, unknown>; items?: unknown; additionalProperties?: unknown } | undefined;
  if (Array.isArray(data)) return data.map((v) => inSchemaOrder(s?.items, v));
  if (data === null || typeof data !== 'object') return data;
  const o = data as Record<string, unknown>;
  const keys = [...Object.keys(s?.properties ?? {}).filter((k) => Object.hasOwn(o, k)), ...Object.keys(o).filter((k) => !Object.hasOwn(s?.properties ?? {}, k))];
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const sub = s?.properties?.[k] ?? (typeof s?.additionalProperties === 'object' ? s.additionalProperties : undefined);
    Object.defineProperty(out, k, { value: inSchemaOrder(sub, o[k]), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

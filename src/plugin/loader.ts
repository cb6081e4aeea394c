// Third-party plugins (design §4.3.2): JavaScript modules loaded at run time
// from configured directories, in the supervisor (to fail before forking)
// and again in every capture process. A directory entry is a plugin when it
// is a `.js`/`.mjs` file, or a folder with `index.js`/`index.mjs` or a
// package.json `main`. The module exports its definition as `default` (or
// `plugin`), or an array of definitions as `plugins`; each is validated by
// the registry exactly like a built-in.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OtusError } from '../util/errors.js';
import type { PluginRegistry, RegisteredPlugin } from './registry.js';

function entryFile(path: string): string | null {
  const st = statSync(path);
  if (st.isFile()) return /\.(m?js)$/.test(path) ? path : null;
  if (!st.isDirectory()) return null;
  const pkg = join(path, 'package.json');
  if (existsSync(pkg)) {
    try {
      const main = (JSON.parse(readFileSync(pkg, 'utf8')) as { main?: unknown }).main;
      if (typeof main === 'string') return join(path, main);
    } catch (e) {
      throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${pkg}: package.json is not JSON (${(e as Error).message})`);
    }
  }
  for (const f of ['index.js', 'index.mjs']) if (existsSync(join(path, f))) return join(path, f);
  return null;
}

/** Imports one plugin module and registers what it exports. */
export async function loadPluginFile(registry: PluginRegistry, file: string): Promise<RegisteredPlugin[]> {
  const abs = resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    const err = new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${abs}: cannot import (${(e as Error).message})`);
    err.cause = e;
    throw err;
  }
  const defs: unknown[] = Array.isArray(mod.plugins) ? mod.plugins : mod.default !== undefined ? [mod.default] : mod.plugin !== undefined ? [mod.plugin] : [];
  if (defs.length === 0) {
    throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${abs}: exports no plugin (expected default, plugin or plugins)`);
  }
  return defs.map((d) => registry.register(d, abs));
}

/** Loads every plugin in each directory, in name order. A missing directory is an error (it was configured). */
export async function loadPluginDirectories(registry: PluginRegistry, dirs: readonly string[]): Promise<RegisteredPlugin[]> {
  const out: RegisteredPlugin[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (e) {
      throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin directory ${dir}: cannot read (${(e as Error).message})`);
    }
    for (const name of names) {
      if (name.startsWith('.') || name === 'node_modules') continue;
      const file = entryFile(join(dir, name));
      if (file) out.push(...(await loadPluginFile(registry, file)));
    }
  }
  return out;
}

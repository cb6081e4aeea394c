// Third-party plugins: JavaScript modules in directories given with
// --plugin-dir. The trust model (plugins/README.md): a plugin runs with the
// privileges of the process that loads it (root, in a capture process), so
//  - a plugin directory, everything in it and every directory above it must
//    be owned by root or by this process's user and writable by no one else
//    (as sudo and OpenSSH check their configuration; an ancestor such as
//    /tmp that others may write to is accepted only with the sticky bit,
//    which keeps them from renaming what is in it), and no entry in it may
//    resolve outside it: OTUS_ERR_PLUGIN_UNSAFE, checked when a registry is
//    made, before anything is imported;
//  - a plugin is found by its name, never by importing everything: the
//    entry `NAME.mjs`, `NAME.js` or folder `NAME/` (its package.json `main`,
//    else index.mjs or index.js, inside the folder) is imported only when a
//    task names plugin NAME, and only the definitions it exports under that
//    name are registered (validated like a built-in's).

import { existsSync, lstatSync, readFileSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OtusError } from '../util/errors.js';
import type { PluginRegistry, RegisteredPlugin } from './registry.js';

/** The most entries a plugin directory's tree may hold (each is checked in every process that makes a registry). */
export const MAX_PLUGIN_TREE = 10_000;

const PLUGIN_FILE = /^([a-z][a-z0-9_-]*)\.(m?js)$/;
const PLUGIN_DIR = /^[a-z][a-z0-9_-]*$/;

interface Entry {
  name: string;
  /** The directory (real path) it is in. */
  dir: string;
  /** The module to import (real path, inside dir). */
  file: string;
}

function unsafe(dir: string, why: string): OtusError {
  return new OtusError(
    'OTUS_ERR_PLUGIN_UNSAFE',
    `plugin directory ${dir}: ${why}; a plugin directory, everything in it and the directories above it must be owned by root or by uid ${uid()} and writable by no one else`,
  );
}

function uid(): number {
  return process.geteuid?.() ?? 0;
}

/** Why a file or directory could have been written by someone other than root or us, or null. */
function untrusted(path: string, st: Stats, ancestor: boolean): string | null {
  if (st.uid !== 0 && st.uid !== uid()) return `${path} is owned by uid ${st.uid}`;
  const w = st.mode & 0o022;
  if (w === 0) return null;
  // /tmp and the like: others may add entries but not rename or remove ours.
  if (ancestor && st.isDirectory() && (st.mode & 0o1000) !== 0) return null;
  return `${path} is ${w & 0o002 ? 'world' : 'group'}-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
}

const inside = (path: string, root: string): boolean => path.startsWith(root === sep ? root : root + sep);

/** Checks every entry under `root` (a real path): ownership and mode, symbolic links resolving inside it. */
function checkTree(root: string, top: string, seen: { n: number }): void {
  for (const name of readdirSync(root)) {
    if (++seen.n > MAX_PLUGIN_TREE) {
      throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin directory ${top}: more than ${MAX_PLUGIN_TREE} entries to check; keep only plugins in it`);
    }
    const p = join(root, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync(p);
      } catch {
        throw unsafe(top, `${p} is a symbolic link that resolves to nothing`);
      }
      if (!inside(real, top)) throw unsafe(top, `${p} resolves to ${real}, outside it`);
      continue; // what it points to is checked where it is
    }
    const why = untrusted(p, st, false);
    if (why) throw unsafe(top, why);
    if (st.isDirectory()) checkTree(p, top, seen);
  }
}

/** The module a folder plugin names (package.json `main`, else index.mjs or index.js), or null; it must resolve inside the folder. */
function folderEntry(folder: string, top: string): string | null {
  let rel: string | null = null;
  const pkg = join(folder, 'package.json');
  if (existsSync(pkg)) {
    let main: unknown;
    try {
      main = (JSON.parse(readFileSync(pkg, 'utf8')) as { main?: unknown }).main;
    } catch (e) {
      throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${pkg}: package.json is not JSON (${(e as Error).message})`);
    }
    if (typeof main === 'string') rel = main;
  }
  if (rel === null) rel = ['index.mjs', 'index.js'].find((f) => existsSync(join(folder, f))) ?? null;
  if (rel === null) return null;
  let real: string;
  try {
    real = realpathSync(resolve(folder, rel));
  } catch {
    throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${folder}: its entry ${rel} does not exist`);
  }
  if (!inside(real, folder)) throw unsafe(top, `${folder}: its entry ${rel} resolves to ${real}, outside the plugin's folder`);
  if (!statSync(real).isFile()) throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${folder}: its entry ${real} is not a file`);
  return real;
}

/**
 * The plugin directories of a registry: checked (trust, as above) and
 * indexed by plugin name when opened; a plugin's module is imported only by
 * load(), when a task names it.
 */
export class PluginDirectories {
  private readonly entries = new Map<string, Entry>();
  /** Names whose module was imported (once per registry). */
  private readonly loaded = new Set<string>();

  /** Checks each directory and indexes its plugins. Throws OTUS_ERR_PLUGIN_UNSAFE, _LOAD (unreadable, ambiguous), _DUPLICATE (a name in two directories). */
  constructor(dirs: readonly string[]) {
    for (const d of dirs) {
      let top: string;
      try {
        top = realpathSync(resolve(d));
        if (!statSync(top).isDirectory()) throw new Error('not a directory');
      } catch (e) {
        throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin directory ${d}: cannot read (${(e as Error).message})`);
      }
      for (let p = top; ; p = dirname(p)) {
        const why = untrusted(p, statSync(p), p !== top);
        if (why) throw unsafe(top, why);
        if (dirname(p) === p) break;
      }
      checkTree(top, top, { n: 0 });
      this.index(top);
    }
  }

  private index(top: string): void {
    const here = new Map<string, string>();
    for (const f of readdirSync(top).sort()) {
      const path = join(top, f);
      const m = PLUGIN_FILE.exec(f);
      let name: string | null = null;
      let file: string | null = null;
      if (m && statSync(path).isFile()) {
        name = m[1];
        file = realpathSync(path);
      } else if (PLUGIN_DIR.test(f) && statSync(path).isDirectory()) {
        const real = realpathSync(path);
        file = folderEntry(real, top);
        if (file) name = f;
      }
      if (name === null || file === null) continue; // not a plugin (a README, a folder without an entry)
      const other = here.get(name);
      if (other !== undefined) throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin directory ${top}: both ${other} and ${f} would be plugin "${name}"`);
      here.set(name, f);
      const prev = this.entries.get(name);
      if (prev) throw new OtusError('OTUS_ERR_PLUGIN_DUPLICATE', `plugin "${name}" is in two plugin directories: ${prev.file} and ${file}`);
      this.entries.set(name, { name, dir: top, file });
    }
  }

  /** The plugin names the directories hold (nothing imported). */
  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The module a name would load, for messages. */
  fileOf(name: string): string | undefined {
    return this.entries.get(name)?.file;
  }

  /**
   * Imports plugin `name`'s module (once) and registers each definition it
   * exports under that name (a parser and a processor may share one).
   * Returns what it registered; [] when the name is not here or was loaded.
   */
  async load(registry: PluginRegistry, name: string): Promise<RegisteredPlugin[]> {
    const e = this.entries.get(name);
    if (!e || this.loaded.has(name)) return [];
    this.loaded.add(name);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(e.file).href)) as Record<string, unknown>;
    } catch (err) {
      throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${e.file}: cannot import (${(err as Error).message})`, { cause: err });
    }
    const defs: unknown[] = Array.isArray(mod.plugins) ? mod.plugins : mod.default !== undefined ? [mod.default] : mod.plugin !== undefined ? [mod.plugin] : [];
    if (defs.length === 0) throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${e.file}: exports no plugin (expected default, plugin or plugins)`);
    const nameOf = (d: unknown): unknown => (d as { meta?: { name?: unknown } } | null)?.meta?.name;
    const mine = defs.filter((d) => nameOf(d) === name);
    // A single definition is validated whatever its name says (its errors name the file); a list only by name.
    if (mine.length === 0 && defs.length === 1) mine.push(defs[0]);
    const out = mine.map((d) => registry.register(d, e.file));
    if (!out.some((p) => p.meta.name === name)) {
      const names = defs.map((d) => JSON.stringify(String(nameOf(d)))).join(', ');
      throw new OtusError('OTUS_ERR_PLUGIN_LOAD', `plugin from ${e.file}: exports no plugin named "${name}" (it exports ${names}): a plugin's file or folder is named after it`);
    }
    return out;
  }
}

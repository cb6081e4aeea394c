// What every benchmark's command line shares: any error as one coded line,
// never a stack trace, and one reader of options that refuses what it does
// not know before anything starts.
//
// Imported first by every benchmark that runs as a program. When the
// process's main script is one of bench/'s, importing this module installs
// handlers that print an uncaught error or rejection as
// `bench/NAME: MESSAGE [CODE]` (asOtusError: a bug is OTUS_ERR_INTERNAL, and
// OTUS_DEBUG=1 adds its stack) and exit 1. Imported by anything else (a test,
// directly or through bench/gen-calls.ts) it installs nothing.
//
// Options (benchArgs): `--name value`, `--name=value`, flags (`--json`); an
// unknown option, a value the option's reader refuses, a missing value, an
// option given twice or an unexpected positional argument is an
// OTUS_ERR_BAD_ARGUMENT naming the option and the value. Positional
// arguments, where the benchmark takes them, are `_` (all after `--` too):
//
//   const o = benchArgs({ calls: opt(1000, int), stats: opt('', oneOf('on', 'only')), workers: opt([1, 2], list(int)), json: flag });
//   o.calls; // number: 1000 unless --calls N (a positive integer)

import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asOtusError, OtusError } from '../src/util/errors.js';

function exitWith(err: unknown): never {
  const e = asOtusError(err);
  process.stderr.write(`bench/${basename(process.argv[1] ?? 'bench', '.js')}: ${e.message} [${e.code}]\n`);
  process.exit(1);
}

const mainScript = process.argv[1];
if (mainScript !== undefined && dirname(resolve(mainScript)) === dirname(fileURLToPath(import.meta.url))) {
  process.on('uncaughtException', exitWith);
  process.on('unhandledRejection', exitWith);
}

/** A bad command line: an OTUS_ERR_BAD_ARGUMENT with this message. */
export const badArgument = (message: string): OtusError => new OtusError('OTUS_ERR_BAD_ARGUMENT', message);

/** Reads one value of an option (`name`: `--calls`, for messages); throws badArgument naming the option and the value. */
export type Reader<T> = (raw: string, name: string) => T;

/** One option: its value when not given, how a given value is read; a flag takes none. */
export interface Opt<T> {
  readonly def: T;
  readonly read: Reader<T>;
  readonly flag?: true;
}

/** An option with a value: `def` when not given (a value of the reader's type, or '' or null for "not given"). */
export function opt<T>(def: NoInfer<T>, read: Reader<T>): Opt<T>;
export function opt<T>(def: '', read: Reader<T>): Opt<T | ''>;
export function opt<T>(def: null, read: Reader<T>): Opt<T | null>;
export function opt<T>(def: T | '' | null, read: Reader<T>): Opt<T | '' | null> {
  return { def, read };
}

/** A flag (`--json`): true when given. */
export const flag: Opt<boolean> = { def: false, read: () => true, flag: true };

const numeric =
  (what: string, ok: (v: number) => boolean): Reader<number> =>
  (raw, name) => {
    const v = raw.trim() === '' ? NaN : Number(raw);
    if (!ok(v)) throw badArgument(`${name}: expected ${what}, got "${raw}"`);
    return v;
  };

/** Any string. */
export const text: Reader<string> = (raw) => raw;
/** The path of a file (or directory) that exists. */
export const file: Reader<string> = (raw, name) => {
  if (!existsSync(raw)) throw badArgument(`${name}: no such file: ${raw}`);
  return raw;
};
/** A finite number, 0 or more. */
export const num = numeric('a non-negative number', (v) => Number.isFinite(v) && v >= 0);
/** A finite number above 0. */
export const positive = numeric('a positive number', (v) => Number.isFinite(v) && v > 0);
/** An integer, 1 or more. */
export const int = numeric('a positive integer', (v) => Number.isInteger(v) && v > 0);
/** An integer, 0 or more. */
export const uint = numeric('a non-negative integer', (v) => Number.isInteger(v) && v >= 0);

/** One of the choices. */
export function oneOf<const C extends string>(...choices: C[]): Reader<C> {
  return (raw, name) => {
    if (!(choices as string[]).includes(raw)) throw badArgument(`${name}: expected one of ${choices.join(', ')}, got "${raw}"`);
    return raw as C;
  };
}

/** A comma-separated list (`1,2`), each element read by `item`. */
export function list<T>(item: Reader<T>): Reader<T[]> {
  return (raw, name) => raw.split(',').map((x) => item(x, name));
}

export type Values<S extends Record<string, Opt<unknown>>> = { readonly [K in keyof S]: S[K] extends Opt<infer T> ? T : never };

export interface BenchArgsOptions {
  /** The positional arguments' name in messages: `FILE` takes at most one, `FILE...` any number; none when absent. */
  positionals?: string;
  /**
   * First arguments with which the script runs as its own child (`--worker JSON`):
   * with one of them first, nothing is read or checked and every option is its default.
   */
  internal?: readonly string[];
  /** The arguments; process.argv.slice(2) when absent. */
  argv?: readonly string[];
}

/** The benchmark's options by name (each its default unless given), and `_`, the positional arguments. */
export function benchArgs<S extends Record<string, Opt<unknown>>>(spec: S, o: BenchArgsOptions = {}): Values<S> & { readonly _: readonly string[] } {
  const args = o.argv ?? process.argv.slice(2);
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) values[k] = v.def;
  if (args[0] !== undefined && o.internal?.includes(args[0])) return { ...values, _: [...args] } as Values<S> & { _: string[] };
  // `--name` or `--name=value` of an option of the spec, or undefined.
  const option = (a: string): { name: string; value: string | undefined } | undefined => {
    const m = /^--([^=]+)(?:=([^]*))?$/.exec(a);
    return m && Object.hasOwn(spec, m[1]!) ? { name: m[1]!, value: m[2] } : undefined;
  };
  const options = Object.keys(spec).map((k) => `--${k}`).join(', ');
  const positionals: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    const given = option(a);
    if (given === undefined) throw badArgument(`unknown option ${a.split('=')[0]} (options: ${options || 'none'})`);
    const { name } = given;
    if (seen.has(name)) throw badArgument(`--${name} given more than once`);
    seen.add(name);
    let raw = given.value;
    if (spec[name]!.flag) {
      if (raw !== undefined) throw badArgument(`--${name} takes no value, got "${raw}"`);
    } else if (raw === undefined) {
      // A value may start with -- (--node-args --max-semi-space-size=2), but may not be another option.
      raw = args[++i];
      if (raw === undefined || option(raw) !== undefined) throw badArgument(`--${name} needs a value`);
    }
    values[name] = spec[name]!.read(raw ?? '', `--${name}`);
  }
  const p = o.positionals;
  const max = p === undefined ? 0 : p.endsWith('...') ? Infinity : 1;
  if (positionals.length > max) throw badArgument(`unexpected argument "${positionals[max]}" (${p === undefined ? `options: ${options || 'none'}` : `takes one ${p}`})`);
  return { ...values, _: positionals } as Values<S> & { _: string[] };
}

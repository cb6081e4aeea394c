// The command channel's messages (docs/commands.md): their fields, the
// canonical form a signature covers, and HMAC-SHA256 signing and checking.
// Pure functions, shared by the daemon (commands.ts) and `otusctl
// sign-command`.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { OtusError } from '../util/errors.js';

export const COMMAND_VERSION = 'v1';
export const COMMANDS = ['create_task', 'stop_task', 'reload', 'status'] as const;
export type CommandName = (typeof COMMANDS)[number];
/** A key shorter than this is refused: HMAC is only as strong as its key. */
export const MIN_KEY_BYTES = 16;

/** A command message as read from the topic: the fields the daemon looks at (others are kept, and signed). */
export interface CommandMessage {
  version: string;
  request_id: string;
  target: string | string[];
  command: string;
  timestamp?: string;
  payload?: Record<string, unknown>;
  signature?: string;
  [field: string]: unknown;
}

/**
 * The canonical form of a value: JSON with every object's keys sorted (by
 * UTF-16 code units, as Array.prototype.sort does), no whitespace, strings
 * and numbers as JSON.stringify writes them. `jq -cjS .` writes the same for
 * ASCII keys.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** What a message's signature covers: the message without `signature`, canonical. */
export function signedText(msg: Record<string, unknown>): string {
  const { signature: _, ...rest } = msg;
  return canonicalJson(rest);
}

/** The signature of a message: HMAC-SHA256 of its signed text under `key`, lowercase hex. */
export function signCommand(msg: Record<string, unknown>, key: Buffer): string {
  return createHmac('sha256', key).update(signedText(msg), 'utf8').digest('hex');
}

/** Whether the message's `signature` is the right one (compared in constant time). */
export function signatureValid(msg: Record<string, unknown>, key: Buffer): boolean {
  const sig = msg.signature;
  if (typeof sig !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sig)) return false;
  const want = Buffer.from(signCommand(msg, key), 'hex');
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}

/** The key as bytes: a key file's content or a variable's value, trailing whitespace (a final newline) removed. */
export function commandKey(text: string, where: string): Buffer {
  const key = Buffer.from(text.replace(/\s+$/, ''), 'utf8');
  if (key.length < MIN_KEY_BYTES) throw new OtusError('OTUS_ERR_CONFIG', `${where}: the command key has ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed (e.g. openssl rand -hex 32)`);
  return key;
}

/** Reads a key file, refusing one that others may read or write (its content would not be a secret). */
export function readKeyFile(path: string, where: string): Buffer {
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o006) !== 0) throw new OtusError('OTUS_ERR_CONFIG', `${where} ${path}: readable or writable by others (mode ${(st.mode & 0o777).toString(8)}): chmod o-rw it`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof OtusError) throw e;
    throw new OtusError('OTUS_ERR_CONFIG', `${where} ${path}: cannot read the command key (${(e as Error).message})`);
  }
  return commandKey(text, `${where} ${path}`);
}

/** Why a value is not a command message, or null when it is one (fields checked: their types, not their meaning). */
export function commandShapeError(m: unknown): string | null {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'not a JSON object';
  const o = m as Record<string, unknown>;
  const str = (k: string, max: number): string | null => (typeof o[k] === 'string' && (o[k] as string).length > 0 && (o[k] as string).length <= max ? null : `${k}: expected a string of 1 to ${max} characters`);
  const t = o.target;
  const targetOk = (typeof t === 'string' && t.length > 0) || (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === 'string' && x.length > 0));
  return (
    str('version', 16) ??
    str('request_id', 128) ??
    str('command', 64) ??
    (targetOk ? null : 'target: expected a node id, a list of them, or "*"') ??
    (o.timestamp === undefined ? null : str('timestamp', 64)) ??
    (o.payload === undefined || (o.payload !== null && typeof o.payload === 'object' && !Array.isArray(o.payload)) ? null : 'payload: expected an object') ??
    (o.signature === undefined ? null : str('signature', 128))
  );
}

/** Whether a message's target names this node. */
export function targets(m: CommandMessage, nodeId: string): boolean {
  const t = m.target;
  return t === '*' || t === nodeId || (Array.isArray(t) && (t.includes(nodeId) || t.includes('*')));
}

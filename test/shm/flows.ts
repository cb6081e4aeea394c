// Flow contexts for the registry tests: the call-id names the key, lengths vary
// with the version, and a label carries a checksum of everything else, so a
// context mixed from two writes is caught.

import type { FlowContext } from '../../src/shm/registry.js';

function sum(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}

export function contextFor(key: number, writer: number, version: number): FlowContext {
  const pad = 'x'.repeat((version * 7 + writer * 13) % 90);
  const callId = `k${key}-w${writer}-v${version}-${pad}@example.org`;
  const codec = ['PCMA', 'PCMU', 'opus/48000', 'G729', 'AMR-WB/16000'][(version + writer) % 5];
  const labels: Record<string, string> = { 'sip.from': `u${version % 1000}`, dir: version % 2 ? 'in' : 'out' };
  labels.sum = sum(callId + '|' + codec + '|' + labels['sip.from'] + '|' + labels.dir);
  return { callId, codec, labels };
}

export function verifyContext(ctx: FlowContext, key: number): string | null {
  const l = ctx.labels ?? {};
  if (!ctx.callId.startsWith(`k${key}-`)) return `key ${key}: call-id ${ctx.callId}`;
  if (l.sum !== sum(ctx.callId + '|' + ctx.codec + '|' + l['sip.from'] + '|' + l.dir)) return `key ${key}: checksum of ${JSON.stringify(ctx)}`;
  return null;
}

/** A call-id alone is self-checking: it must be exactly what contextFor made for its key, writer and version. */
export function verifyCallId(callId: string, key: number): string | null {
  const m = /^k(\d+)-w(\d+)-v(\d+)-/.exec(callId);
  if (m === null || Number(m[1]) !== key) return `key ${key}: call-id ${callId}`;
  if (contextFor(key, Number(m[2]), Number(m[3])).callId !== callId) return `key ${key}: torn call-id ${callId}`;
  return null;
}

// SIP dialogs written as frames for the call-record tests (plugins/parser/sip/calls-record.test.ts):
// one call per scenario, each between its own pair of addresses (so two capture
// processes split them), at times chosen so that one call without BYE times out
// while later calls still run.

import { udpFrame } from './udp-frames.js';

export interface TimedFrame {
  /** µs after the capture's first frame. */
  us: number;
  frame: Uint8Array;
}

interface Leg {
  ip: string;
  user: string;
  tag: string;
  media: number;
}

function sdp(ip: string, port: number, pts: string): string {
  const names: Record<string, string> = { '0': 'PCMU/8000', '8': 'PCMA/8000', '9': 'G722/8000', '101': 'telephone-event/8000' };
  const maps = pts.split(' ').map((pt) => `a=rtpmap:${pt} ${names[pt]}\r\n`).join('');
  return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${pts}\r\n${maps}`;
}

/** One call's messages; `at(ms, ...)` adds a message `ms` after the call's start. */
class Call {
  readonly frames: TimedFrame[] = [];
  readonly id: string;

  constructor(
    readonly name: string,
    readonly t0Us: number,
    readonly a: Leg,
    readonly b: Leg,
  ) {
    this.id = `${name}-${a.tag}@otus.test`;
  }

  private msg(startLine: string, fromA: boolean, cseq: string, toTag: boolean, body = '', contentType = 'application/sdp', branch = 'z9hG4bK1'): string {
    const via = fromA ? `${this.a.ip}:5060` : `${this.b.ip}:5060`;
    const hdrs = [
      startLine,
      `Via: SIP/2.0/UDP ${via};branch=${branch}`,
      // From/To as the request's sender sees them; responses keep the request's.
      `From: "${this.a.user}" <sip:${this.a.user}@${this.a.ip}>;tag=${this.a.tag}`,
      `To: <sip:${this.b.user}@example.net>${toTag ? `;tag=${this.b.tag}` : ''}`,
      `Call-ID: ${this.id}`,
      `CSeq: ${cseq}`,
      `Max-Forwards: 70`,
    ];
    if (body !== '') hdrs.push(`Content-Type: ${contentType}`);
    hdrs.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return `${hdrs.join('\r\n')}\r\n\r\n${body}`;
  }

  /** A request from the caller (a) or the callee (b, with From and To swapped as RFC 3261 has it). */
  req(ms: number, method: string, fromA: boolean, cseq: number, opts: { toTag?: boolean; body?: string; ct?: string; branch?: string } = {}): this {
    const ruri = fromA ? `sip:${this.b.user}@example.net` : `sip:${this.a.user}@${this.a.ip}`;
    let text = this.msg(`${method} ${ruri} SIP/2.0`, fromA, `${cseq} ${method}`, opts.toTag ?? method !== 'INVITE', opts.body ?? '', opts.ct, opts.branch ?? `z9hG4bK${cseq}${method}`);
    if (!fromA) {
      // The callee's requests: its own tag in From, the caller's in To.
      text = text
        .replace(/^From: .*$/m, `From: <sip:${this.b.user}@example.net>;tag=${this.b.tag}`)
        .replace(/^To: .*$/m, `To: "${this.a.user}" <sip:${this.a.user}@${this.a.ip}>;tag=${this.a.tag}`);
    }
    return this.add(ms, fromA, text);
  }

  /** A response to a request of the caller (sent by b) or of the callee (sent by a). */
  res(ms: number, status: string, method: string, cseq: number, opts: { toCaller?: boolean; toTag?: boolean; body?: string } = {}): this {
    const toCaller = opts.toCaller ?? true;
    let text = this.msg(`SIP/2.0 ${status}`, toCaller, `${cseq} ${method}`, opts.toTag ?? !status.startsWith('100'), opts.body ?? '', undefined, `z9hG4bK${cseq}${method}`);
    if (!toCaller) {
      text = text
        .replace(/^From: .*$/m, `From: <sip:${this.b.user}@example.net>;tag=${this.b.tag}`)
        .replace(/^To: .*$/m, `To: "${this.a.user}" <sip:${this.a.user}@${this.a.ip}>;tag=${this.a.tag}`);
    }
    return this.add(ms, !toCaller, text);
  }

  private add(ms: number, fromA: boolean, text: string): this {
    const [s, d] = fromA ? [this.a.ip, this.b.ip] : [this.b.ip, this.a.ip];
    this.frames.push({ us: this.t0Us + Math.round(ms * 1000), frame: udpFrame(s, d, 5060, 5060, text) });
    return this;
  }

  offer(): string {
    return sdp(this.a.ip, this.a.media, '8 0 101');
  }

  answer(pts = '8 101'): string {
    return sdp(this.b.ip, this.b.media, pts);
  }
}

function leg(n: number, side: 'a' | 'b'): Leg {
  return side === 'a'
    ? { ip: `10.30.${n}.1`, user: `100${n}`, tag: `ta${n}`, media: 20000 + 2 * n }
    : { ip: `10.40.${n}.1`, user: `200${n}`, tag: `tb${n}`, media: 30000 + 2 * n };
}

/** Every scenario's frames in capture order, and the names of the calls. */
export function dialogCapture(): { frames: TimedFrame[]; calls: Map<string, string> } {
  const calls: Call[] = [];
  const call = (name: string, startS: number): Call => {
    const n = calls.length + 1;
    const c = new Call(name, Math.round(startS * 1e6), leg(n, 'a'), leg(n, 'b'));
    calls.push(c);
    return c;
  };
  // Answered, ended by the caller, with two SIP INFO digits.
  call('answered', 0)
    .req(0, 'INVITE', true, 1, { body: '' })
    .res(12.5, '100 Trying', 'INVITE', 1)
    .res(350.25, '180 Ringing', 'INVITE', 1)
    .res(2100.125, '200 OK', 'INVITE', 1, { body: '' })
    .req(2110, 'ACK', true, 1)
    .req(5000, 'INFO', true, 2, { body: 'Signal=5\r\nDuration=160\r\n', ct: 'application/dtmf-relay' })
    .res(5010, '200 OK', 'INFO', 2)
    .req(5600, 'INFO', true, 3, { body: 'Signal=#\r\nDuration=200\r\n', ct: 'application/dtmf-relay' })
    .res(5610, '200 OK', 'INFO', 3)
    .req(20000, 'BYE', true, 4)
    .res(20008, '200 OK', 'BYE', 4);
  // Answered with SDP both ways, ended by the callee.
  const c2 = call('callee-bye', 1.5);
  c2.req(0, 'INVITE', true, 1, { body: c2.offer() })
    .res(10, '100 Trying', 'INVITE', 1)
    .res(800, '183 Session Progress', 'INVITE', 1, { body: c2.answer() })
    .res(3000, '200 OK', 'INVITE', 1, { body: c2.answer() })
    .req(3005, 'ACK', true, 1)
    .req(33000, 'BYE', false, 1)
    .res(33010, '200 OK', 'BYE', 1, { toCaller: false });
  // Cancelled while ringing: 487 after the CANCEL.
  call('cancelled', 3)
    .req(0, 'INVITE', true, 1)
    .res(20, '100 Trying', 'INVITE', 1)
    .res(400, '180 Ringing', 'INVITE', 1)
    .req(9000, 'CANCEL', true, 1, { toTag: false, branch: 'z9hG4bK1INVITE' })
    .res(9010, '200 OK', 'CANCEL', 1)
    .res(9015, '487 Request Terminated', 'INVITE', 1)
    .req(9020, 'ACK', true, 1);
  // Busy.
  call('busy', 4)
    .req(0, 'INVITE', true, 1)
    .res(15, '100 Trying', 'INVITE', 1)
    .res(1200, '486 Busy Here', 'INVITE', 1)
    .req(1205, 'ACK', true, 1);
  // Redirected.
  call('redirected', 5)
    .req(0, 'INVITE', true, 1)
    .res(90, '302 Moved Temporarily', 'INVITE', 1)
    .req(95, 'ACK', true, 1);
  // A re-INVITE (hold) on an answered call; its 200 does not change the setup.
  const c6 = call('reinvite', 6);
  c6.req(0, 'INVITE', true, 1, { body: c6.offer() })
    .res(30, '180 Ringing', 'INVITE', 1)
    .res(1500, '200 OK', 'INVITE', 1, { body: c6.answer('0 101') })
    .req(1510, 'ACK', true, 1)
    .req(8000, 'INVITE', true, 2, { toTag: true, body: c6.offer() })
    .res(8100, '200 OK', 'INVITE', 2, { body: c6.answer('0 101') })
    .req(8110, 'ACK', true, 2)
    .req(15000, 'BYE', true, 3)
    .res(15010, '200 OK', 'BYE', 3);
  // The INVITE and the 200 retransmitted (RFC 3261 timers A and G), byte for byte.
  const c7 = call('retransmitted', 7);
  c7.req(0, 'INVITE', true, 1, { body: c7.offer() })
    .req(500, 'INVITE', true, 1, { body: c7.offer() })
    .res(700, '100 Trying', 'INVITE', 1)
    .res(900, '180 Ringing', 'INVITE', 1)
    .res(2500, '200 OK', 'INVITE', 1, { body: c7.answer() })
    .res(3000, '200 OK', 'INVITE', 1, { body: c7.answer() })
    .req(3010, 'ACK', true, 1)
    .req(12000, 'BYE', true, 2)
    .res(12010, '200 OK', 'BYE', 2);
  // Answered, then nothing: no BYE. The calls after it run past its timeout.
  call('no-bye', 8)
    .req(0, 'INVITE', true, 1)
    .res(10, '100 Trying', 'INVITE', 1)
    .res(2000, '200 OK', 'INVITE', 1)
    .req(2010, 'ACK', true, 1);
  // Challenged (407), sent again with credentials: one call.
  call('challenged', 40)
    .req(0, 'INVITE', true, 1)
    .res(5, '407 Proxy Authentication Required', 'INVITE', 1)
    .req(8, 'ACK', true, 1)
    .req(20, 'INVITE', true, 2, { toTag: false })
    .res(30, '100 Trying', 'INVITE', 2)
    .res(600, '180 Ringing', 'INVITE', 2)
    .res(4000, '200 OK', 'INVITE', 2)
    .req(4010, 'ACK', true, 2)
    .req(9000, 'BYE', false, 1)
    .res(9010, '200 OK', 'BYE', 1, { toCaller: false });
  // Late: past the no-bye call's timeout (60 s in the test's task).
  call('late', 120)
    .req(0, 'INVITE', true, 1)
    .res(10, '100 Trying', 'INVITE', 1)
    .res(1000, '603 Decline', 'INVITE', 1)
    .req(1010, 'ACK', true, 1);
  // Other traffic, as a capture process sees all the time: a datagram a second on each of
  // 16 flows, which the flow hash spreads over capture processes. Capture time passes on
  // each of them (Parser.tick), so an idle call times out wherever its SIP went.
  const background: TimedFrame[] = [];
  for (let s = 0; s <= 125; s++) for (let k = 0; k < 16; k++) background.push({ us: s * 1e6 + k * 1000 + 500, frame: udpFrame(`10.50.0.${k + 1}`, '10.60.0.1', 40000 + k, 9, 'background') });
  const frames = [...calls.flatMap((c) => c.frames), ...background].sort((x, y) => x.us - y.us);
  return { frames, calls: new Map(calls.map((c) => [c.id, c.name])) };
}

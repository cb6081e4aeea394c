// SDP (RFC 8866) media endpoints, for correlation: the slow path (one
// offer or answer per call leg), so it works on strings. Also finds the SDP
// part of a multipart body (RFC 2046, e.g. SDP + ISUP in SIP-I).

export interface SdpMedia {
  /** m= media type: audio, video, image, application, ... */
  media: string;
  address: string;
  port: number;
  /** RTCP endpoint: a=rtcp (RFC 3605), else port + 1; -1 with a=rtcp-mux (RFC 5761: RTCP on the RTP port). */
  rtcpPort: number;
  rtcpAddress: string;
  /** Codec of the first payload type listed: rtpmap encoding name or the RFC 3551 static name. */
  codec: string;
  /** Every payload type listed, with its name when known: "8 PCMA 101 telephone-event". */
  ptmap: string;
}

/** RFC 3551 static payload types. */
export const STATIC_PT: Readonly<Record<number, string>> = {
  0: 'PCMU', 3: 'GSM', 4: 'G723', 5: 'DVI4', 6: 'DVI4', 7: 'LPC', 8: 'PCMA', 9: 'G722', 10: 'L16', 11: 'L16', 12: 'QCELP', 13: 'CN',
  14: 'MPA', 15: 'G728', 16: 'DVI4', 17: 'DVI4', 18: 'G729', 25: 'CelB', 26: 'JPEG', 28: 'nv', 31: 'H261', 32: 'MPV', 33: 'MP2T', 34: 'H263',
};

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The SDP text of a body: the body itself for application/sdp, the SDP part of a multipart body, else null. */
export function sdpOfBody(contentType: string, body: string): string | null {
  const ct = contentType.toLowerCase();
  if (ct.startsWith('application/sdp')) return body;
  if (!ct.startsWith('multipart/')) return null;
  const m = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) return null;
  const boundary = '--' + (m[1] ?? m[2]);
  for (const part of body.split(boundary).slice(1)) {
    if (part.startsWith('--')) break;
    const sep = part.search(/\r?\n\r?\n/);
    if (sep < 0) continue;
    const headers = part.slice(0, sep);
    if (/^content-type\s*:\s*application\/sdp/im.test(headers.trim())) {
      const rest = part.slice(sep).replace(/^\r?\n\r?\n/, '');
      return rest.replace(/\r?\n$/, '');
    }
  }
  return null;
}

/** Media descriptions with a usable endpoint (port > 0, connection address not 0.0.0.0 / ::). */
export function parseSdp(text: string): SdpMedia[] {
  const out: SdpMedia[] = [];
  let sessionAddr = '';
  let cur: { media: string; port: number; nports: number; pts: string[]; addr: string; rtcpPort: number; rtcpAddr: string; mux: boolean; rtpmap: Map<string, string> } | null = null;
  const done = (): void => {
    if (cur === null) return;
    const addr = cur.addr || sessionAddr;
    if (cur.port > 0 && addr !== '' && addr !== '0.0.0.0' && addr !== '::') {
      const names = cur.pts.map((pt) => cur!.rtpmap.get(pt) ?? STATIC_PT[Number(pt)] ?? '');
      const ptmap = cur.pts.map((pt, i) => (names[i] ? `${pt} ${names[i]}` : pt)).join(' ');
      for (let k = 0; k < cur.nports; k++) {
        const port = cur.port + 2 * k;
        out.push({
          media: cur.media,
          address: addr,
          port,
          rtcpPort: cur.mux ? -1 : cur.rtcpPort > 0 && k === 0 ? cur.rtcpPort : port + 1,
          rtcpAddress: cur.rtcpAddr || addr,
          codec: names[0] ?? '',
          ptmap,
        });
      }
    }
    cur = null;
  };
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length < 2 || line[1] !== '=') continue;
    const v = line.slice(2).trim();
    switch (line[0]) {
      case 'c': {
        const f = v.split(/\s+/);
        if (f.length < 3 || f[0] !== 'IN') break;
        const a = f[2].split('/')[0];
        if (f[1] === 'IP4' && !IPV4.test(a)) break;
        if (f[1] !== 'IP4' && f[1] !== 'IP6') break;
        if (cur === null) sessionAddr = a;
        else cur.addr = a;
        break;
      }
      case 'm': {
        done();
        const f = v.split(/\s+/);
        if (f.length < 3) break;
        const [p, n] = f[1].split('/');
        const port = Number(p);
        if (!Number.isInteger(port) || port < 0 || port > 65535) break;
        const nports = n !== undefined && Number.isInteger(Number(n)) && Number(n) > 0 ? Math.min(Number(n), 8) : 1;
        cur = { media: f[0], port, nports, pts: f.slice(3), addr: '', rtcpPort: -1, rtcpAddr: '', mux: false, rtpmap: new Map() };
        break;
      }
      case 'a': {
        if (cur === null) break;
        if (v.startsWith('rtpmap:')) {
          const m = /^rtpmap:(\d+)\s+([^/\s]+)/.exec(v);
          if (m) cur.rtpmap.set(m[1], m[2]);
        } else if (v.startsWith('rtcp:')) {
          const f = v.slice(5).trim().split(/\s+/);
          const port = Number(f[0]);
          if (Number.isInteger(port) && port > 0 && port < 65536) cur.rtcpPort = port;
          if (f.length >= 4 && f[0] !== '' && f[1] === 'IN') cur.rtcpAddr = f[3];
        } else if (v === 'rtcp-mux') cur.mux = true;
        break;
      }
    }
  }
  done();
  return out;
}

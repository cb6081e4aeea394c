export { Decoder, DecoderStats } from './decoder.js';
export { DECODE_ERROR_NAMES, DecodeError } from './errors.js';
export { formatIpv4, formatIpv6, formatMac, formatTimestamp } from './format.js';
export { type DecoderOptions, defaultDecoderOptions, parseTunnelList } from './options.js';
export { DecodedPacket, TUNNEL_NAMES, TunnelType } from './packet.js';

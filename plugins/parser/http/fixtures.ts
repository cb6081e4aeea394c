// The HTTP fixture captures (test/fixtures/captures/, provenance in PROVENANCE.md), shared by golden.test.ts and fuzz.test.ts.
export const HTTP_FILES = [
  'zeek--http-get.pcap', 'zeek--http-pipelined-requests.pcap', 'zeek--http-post.pcap', 'zeek--http-100-continue.pcap',
  'zeek--http-11-request-then-cruft.pcap', 'zeek--http-multipart.pcap', 'zeek--http-get-gzip.pcap', 'zeek--http-proxy.pcap',
  'zeek--http-websocket.pcap', 'zeek--http-content-length-overflow.pcap', 'zeek--http-lower-case-nonstandard-port.pcap',
  'PcapPlusPlus--TwoHttpRequests.pcap', 'PcapPlusPlus--three_http_streams.pcap', 'packetnet--ipv6_http.pcap', 'gopacket-test_ethernet.pcap',
];

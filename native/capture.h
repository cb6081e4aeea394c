// Declarations shared by the live-capture parts of the addon (afpacket.cc,
// pcap.cc, xdp.cc). RegisterAfPacket (called from otus.cc) registers them all.
#pragma once
#include <napi.h>

namespace otus {

void RegisterPcap(Napi::Env env, Napi::Object exports);  // pcap.cc: BPF compile, libpcap live capture
void RegisterXdp(Napi::Env env, Napi::Object exports);   // xdp.cc: AF_XDP sockets (when built with libxdp)

}  // namespace otus

// Declarations shared by the live-capture parts of the addon (afpacket.cc,
// pcap.cc). RegisterAfPacket (called from otus.cc) registers them all.
#pragma once
#include <napi.h>

namespace otus {

void RegisterPcap(Napi::Env env, Napi::Object exports);  // pcap.cc: BPF compile, libpcap live capture

}  // namespace otus

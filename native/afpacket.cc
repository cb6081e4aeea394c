// AF_PACKET TPACKET_V3 capture sockets (filled in by the capture-driver work).
#include "otus.h"

namespace otus {

void RegisterAfPacket(Napi::Env, Napi::Object) {}

}  // namespace otus

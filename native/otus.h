// Shared declarations of the Otus addon's parts. Each part registers its
// functions on the exports object; otus.cc calls every Register* once.
#pragma once
#include <napi.h>

#include <string>

namespace otus {

// Throws a JS Error {code: 'OTUS_ERR_SYSCALL', errno} and returns undefined.
Napi::Value ThrowErrno(Napi::Env env, const char* what, const std::string& subject, int err);

void RegisterAfPacket(Napi::Env env, Napi::Object exports);  // afpacket.cc: live capture sockets and rings
void RegisterShm(Napi::Env env, Napi::Object exports);       // shm.cc: POSIX shared memory, wakeups
void RegisterSys(Napi::Env env, Napi::Object exports);       // sys.cc: peer credentials, sd_notify
void RegisterKafka(Napi::Env env, Napi::Object exports);     // kafka.cc: the kafka reporter's producer

}  // namespace otus

// The daemon's service-manager and control-socket syscalls
// (src/supervisor/notify.ts, src/supervisor/peer.ts).
//
//   peerCred(fd) -> [pid, uid, gid] of the peer of a connected Unix stream socket
//   notifySend(path, text) -> false if the datagram could not be sent
//
// CLOCK_MONOTONIC needs no function here: process.hrtime.bigint() is libuv's
// uv_hrtime(), clock_gettime(CLOCK_MONOTONIC) on Linux.
#include "otus.h"

#include <napi.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace otus {

namespace {

// peerCred(fd): getsockopt(SO_PEERCRED), the credentials the peer had when it
// connected (the kernel records them at connect(2), not at each read).
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "peerCred(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (fd < 0) return ThrowErrno(env, "getsockopt(SO_PEERCRED)", "fd " + std::to_string(fd), EBADF);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return ThrowErrno(env, "getsockopt(SO_PEERCRED)", "fd " + std::to_string(fd), errno);
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, cred.pid));
  out.Set(1u, Napi::Number::New(env, cred.uid));
  out.Set(2u, Napi::Number::New(env, cred.gid));
  return out;
}

// notifySend(path, text): one datagram to the service manager's socket, as
// sd_notify(3) sends it. '@' at the start names an abstract address: it
// becomes a NUL and the address length counts exactly the name's bytes.
// Never throws (the caller counts failures): sd_notify must not stop a daemon.
Napi::Value NotifySend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) return Napi::Boolean::New(env, false);
  std::string path = info[0].As<Napi::String>();
  std::string text = info[1].As<Napi::String>();
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  // Only absolute paths and abstract names are notification sockets.
  if (path.size() < 2 || path.size() > sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@'))
    return Napi::Boolean::New(env, false);
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t alen = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Boolean::New(env, false);
  ssize_t n = sendto(fd, text.data(), text.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), alen);
  close(fd);
  return Napi::Boolean::New(env, n == static_cast<ssize_t>(text.size()));
}

}  // namespace

void RegisterSys(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("notifySend", Napi::Function::New(env, NotifySend, "notifySend"));
}

}  // namespace otus

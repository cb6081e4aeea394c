// AF_PACKET TPACKET_V3 capture sockets, and event-loop readiness for any
// capture fd. Syscalls only: JavaScript validates every option, reads the
// ring in place (block_status, tpacket3_hdr) and hands blocks back itself by
// storing TP_STATUS_KERNEL, so no native call is made per block or packet.
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <napi.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <string>

#include "capture.h"
#include "otus.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace otus {
namespace {

// ------------------------------------------------------------- AF_PACKET

// One capture socket and its ring. Owned jointly by the handle (External)
// and the ring's ArrayBuffer: whichever is collected last frees it, and an
// explicit afpClose() detaches the ArrayBuffer first, so JavaScript can
// never read the mapping after munmap.
struct Sock {
  int fd = -1;
  void* ring = nullptr;
  size_t ringLen = 0;
  int refs = 2;
  Napi::Reference<Napi::ArrayBuffer> ab;  // weak
  std::string name;
};

void Release(Sock* s) {
  if (s->ring) munmap(s->ring, s->ringLen);
  if (s->fd >= 0) close(s->fd);
  s->ring = nullptr;
  s->fd = -1;
}

void Unref(Sock* s) {
  if (--s->refs == 0) {
    Release(s);
    delete s;
  }
}

void FinalizeHandle(Napi::Env, Sock* s) { Unref(s); }
void FinalizeRing(Napi::Env, void*, Sock* s) { Unref(s); }

Sock* GetSock(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "af_packet: expected a socket handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<Sock>>().Data();
}

int AttachFilter(int fd, const Napi::Value& v) {
  if (!v.IsBuffer()) return 0;
  auto b = v.As<Napi::Buffer<uint8_t>>();
  struct sock_fprog prog;
  prog.len = static_cast<unsigned short>(b.Length() / sizeof(struct sock_filter));
  prog.filter = reinterpret_cast<struct sock_filter*>(b.Data());
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

// afpOpen(name, ifindex, blockSize, blockCount, frameSize, retireMs, bpf|null,
//         promisc, ignoreOutgoing, fanoutArg) -> [handle, ring ArrayBuffer]
// fanoutArg: -1 for no fanout, else group | (mode | flags) << 16.
// The socket is created with protocol 0, so it receives nothing until bind();
// the filter is attached before that, and no unfiltered frame enters the ring.
Napi::Value AfpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) {
    Napi::TypeError::New(env, "afpOpen: 10 arguments expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>();
  int ifindex = info[1].As<Napi::Number>().Int32Value();
  unsigned blockSize = info[2].As<Napi::Number>().Uint32Value();
  unsigned blockCount = info[3].As<Napi::Number>().Uint32Value();
  unsigned frameSize = info[4].As<Napi::Number>().Uint32Value();
  unsigned retireMs = info[5].As<Napi::Number>().Uint32Value();
  bool promisc = info[7].ToBoolean();
  bool ignoreOutgoing = info[8].ToBoolean();
  int64_t fanout = info[9].As<Napi::Number>().Int64Value();

  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ThrowErrno(env, "socket(AF_PACKET)", name, errno);
  auto fail = [&](const char* what) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, what, name, err);
  };
  if (AttachFilter(fd, info[6]) != 0) return fail("setsockopt(SO_ATTACH_FILTER)");
  int version = TPACKET_V3;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0)
    return fail("setsockopt(PACKET_VERSION)");
  if (ignoreOutgoing) {
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) != 0)
      return fail("setsockopt(PACKET_IGNORE_OUTGOING)");
  }
  struct tpacket_req3 req = {};
  req.tp_block_size = blockSize;
  req.tp_block_nr = blockCount;
  req.tp_frame_size = frameSize;
  req.tp_frame_nr = static_cast<unsigned>((static_cast<uint64_t>(blockSize) * blockCount) / frameSize);
  req.tp_retire_blk_tov = retireMs;
  req.tp_feature_req_word = TP_FT_REQ_FILL_RXHASH;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) return fail("setsockopt(PACKET_RX_RING)");
  size_t len = static_cast<size_t>(blockSize) * blockCount;
  void* ring = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (ring == MAP_FAILED) return fail("mmap(PACKET_RX_RING)");
  auto failMapped = [&](const char* what) {
    int err = errno;
    munmap(ring, len);
    close(fd);
    return ThrowErrno(env, what, name, err);
  };
  struct sockaddr_ll sll = {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) != 0) return failMapped("bind");
  if (promisc) {
    struct packet_mreq mr = {};
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0)
      return failMapped("setsockopt(PACKET_ADD_MEMBERSHIP)");
  }
  if (fanout >= 0) {
    uint32_t arg = static_cast<uint32_t>(fanout);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) return failMapped("setsockopt(PACKET_FANOUT)");
  }

  auto* s = new Sock();
  s->fd = fd;
  s->ring = ring;
  s->ringLen = len;
  s->name = name;
  auto ab = Napi::ArrayBuffer::New(env, ring, len, FinalizeRing, s);
  s->ab = Napi::Weak(ab);
  auto handle = Napi::External<Sock>::New(env, s, FinalizeHandle);
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, handle);
  out.Set(1u, ab);
  out.Set(2u, Napi::Number::New(env, fd));
  return out;
}

// afpSetFilter(handle, bpf|null): replaces the filter atomically (null removes it).
Napi::Value AfpSetFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sock* s = GetSock(info);
  if (!s) return env.Undefined();
  if (s->fd < 0) return ThrowErrno(env, "set filter on", s->name, EBADF);
  if (info.Length() > 1 && info[1].IsBuffer()) {
    if (AttachFilter(s->fd, info[1]) != 0) return ThrowErrno(env, "setsockopt(SO_ATTACH_FILTER)", s->name, errno);
  } else {
    int zero = 0;
    if (setsockopt(s->fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)) != 0 && errno != ENOENT)
      return ThrowErrno(env, "setsockopt(SO_DETACH_FILTER)", s->name, errno);
  }
  return env.Undefined();
}

// afpStats(handle, out Float64Array(3)): tp_packets (drops included, as the
// kernel reports it), tp_drops, tp_freeze_q_cnt since the previous call (the
// kernel resets them on read).
Napi::Value AfpStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sock* s = GetSock(info);
  if (!s) return env.Undefined();
  if (s->fd < 0) return ThrowErrno(env, "statistics of", s->name, EBADF);
  struct tpacket_stats_v3 st = {};
  socklen_t len = sizeof(st);
  if (getsockopt(s->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0)
    return ThrowErrno(env, "getsockopt(PACKET_STATISTICS)", s->name, errno);
  auto out = info[1].As<Napi::Float64Array>();
  out[0] = st.tp_packets;
  out[1] = st.tp_drops;
  out[2] = st.tp_freeze_q_cnt;
  return env.Undefined();
}

// afpClose(handle): detaches the ring's ArrayBuffer (every view over it
// becomes empty), unmaps the ring and closes the socket. Idempotent.
Napi::Value AfpClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sock* s = GetSock(info);
  if (!s) return env.Undefined();
  if (s->fd < 0) return env.Undefined();
  if (!s->ab.IsEmpty()) {
    Napi::ArrayBuffer ab = s->ab.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
  }
  Release(s);
  return env.Undefined();
}

// ------------------------------------------------------------- readiness

// A uv_poll_t on a capture fd that calls back into JavaScript when it is
// readable: JavaScript then drains every ready block and returns; the event
// loop is never blocked. The uv handle is freed in its close callback, the
// box when the JS handle is collected.
struct Poller {
  uv_poll_t* h = nullptr;
  napi_env env = nullptr;
  Napi::FunctionReference cb;
};

void OnClosed(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

void StopPoller(Poller* p) {
  if (!p->h) return;
  uv_poll_stop(p->h);
  uv_close(reinterpret_cast<uv_handle_t*>(p->h), OnClosed);
  p->h = nullptr;
}

void OnReadable(uv_poll_t* h, int status, int) {
  auto* p = static_cast<Poller*>(h->data);
  if (!p || p->cb.IsEmpty()) return;
  Napi::Env env(p->env);
  Napi::HandleScope scope(env);
  p->cb.MakeCallback(env.Global(), {Napi::Number::New(env, status)});
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

void FinalizePoller(Napi::Env, Poller* p) {
  if (p->h) p->h->data = nullptr;
  StopPoller(p);
  delete p;
}

// pollStart(fd, callback(status)) -> handle
Napi::Value PollStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "pollStart(fd, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return ThrowErrno(env, "uv loop for fd", std::to_string(fd), EINVAL);
  auto* p = new Poller();
  p->env = env;
  p->h = new uv_poll_t();
  int rc = uv_poll_init(loop, p->h, fd);
  if (rc != 0) {
    delete p->h;
    delete p;
    return ThrowErrno(env, "uv_poll_init fd", std::to_string(fd), -rc);
  }
  p->h->data = p;
  rc = uv_poll_start(p->h, UV_READABLE, OnReadable);
  if (rc != 0) {
    StopPoller(p);
    delete p;
    return ThrowErrno(env, "uv_poll_start fd", std::to_string(fd), -rc);
  }
  p->cb = Napi::Persistent(info[1].As<Napi::Function>());
  return Napi::External<Poller>::New(env, p, FinalizePoller);
}

// pollStop(handle): idempotent; the fd may be closed right after.
Napi::Value PollStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(env, "pollStop(handle)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Poller* p = info[0].As<Napi::External<Poller>>().Data();
  StopPoller(p);
  p->cb.Reset();
  return env.Undefined();
}

}  // namespace

void RegisterAfPacket(Napi::Env env, Napi::Object exports) {
  exports.Set("afpOpen", Napi::Function::New(env, AfpOpen, "afpOpen"));
  exports.Set("afpSetFilter", Napi::Function::New(env, AfpSetFilter, "afpSetFilter"));
  exports.Set("afpStats", Napi::Function::New(env, AfpStats, "afpStats"));
  exports.Set("afpClose", Napi::Function::New(env, AfpClose, "afpClose"));
  exports.Set("pollStart", Napi::Function::New(env, PollStart, "pollStart"));
  exports.Set("pollStop", Napi::Function::New(env, PollStop, "pollStop"));
  RegisterPcap(env, exports);
  RegisterXdp(env, exports);
}

}  // namespace otus

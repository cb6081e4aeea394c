// AF_XDP capture sockets: libxdp's xsk API for the UMEM and rings, and its
// default XDP program (a queue's frames into that queue's socket), loaded with
// libbpf and attached here. Built only when libxdp-dev was present at
// build time (binding.gyp defines OTUS_HAVE_XDP); otherwise xdpAvailable()
// says why and xdpOpen throws. The UMEM is handed to JavaScript as one
// external ArrayBuffer; xdpRecv is the one native call per batch: it gives
// the previous batch's frames back to the fill ring, then lists the new ones.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "capture.h"
#include "otus.h"

#ifdef OTUS_HAVE_XDP
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include <map>
#include <net/if.h>
#include <vector>
#endif

namespace otus {
namespace {

#ifdef OTUS_HAVE_XDP

struct Xsk {
  xsk_umem* umem = nullptr;
  xsk_socket* xsk = nullptr;
  xsk_ring_prod fq = {};
  xsk_ring_cons cq = {};
  xsk_ring_cons rx = {};
  void* area = nullptr;
  size_t areaLen = 0;
  unsigned frameSize = 0;
  std::vector<uint64_t> pending;  // frames of the last batch, still being read by JS
  int refs = 2;
  Napi::Reference<Napi::ArrayBuffer> ab;
  std::string name;
  bool open = false;
  int ifindex = 0;
};

// libxdp's default AF_XDP program (redirect each queue's frames to the
// socket in xsks_map, else pass), loaded with libbpf and attached by us, one
// per interface and process, shared by that process's sockets. libxdp 1.3's
// own loading (inside xsk_socket__create, or xdp_program__attach without a
// bpffs) leaks a map or program fd per socket.
struct Prog {
  bpf_object* obj = nullptr;
  int mapFd = -1;
  int linkFd = -1;
  int users = 0;
};
std::map<int, Prog> progs;

bpf_object* OpenDefaultProg() {
  std::vector<std::string> dirs;
  if (const char* env = getenv("LIBXDP_OBJECT_PATH")) dirs.push_back(env);
  for (const char* d : {"/usr/lib/x86_64-linux-gnu/bpf", "/usr/lib/aarch64-linux-gnu/bpf", "/usr/lib/bpf", "/usr/lib64/bpf", "/usr/local/lib/bpf"})
    dirs.push_back(d);
  for (const auto& d : dirs) {
    std::string path = d + "/xsk_def_xdp_prog.o";
    if (access(path.c_str(), R_OK) != 0) continue;
    bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!libbpf_get_error(obj)) return obj;
  }
  errno = ENOENT;
  return nullptr;
}

int AcquireProg(int ifindex, int mode, int* mapFd) {
  Prog& p = progs[ifindex];
  if (p.users == 0) {
    bpf_object* obj = OpenDefaultProg();
    if (!obj) {
      progs.erase(ifindex);
      return -ENOENT;
    }
    int rc = bpf_object__load(obj);
    bpf_program* prog = rc ? nullptr : bpf_object__find_program_by_name(obj, "xsk_def_prog");
    int map = rc ? -1 : bpf_object__find_map_fd_by_name(obj, "xsks_map");
    if (rc || !prog || map < 0) {
      bpf_object__close(obj);
      progs.erase(ifindex);
      return rc ? rc : -ENOENT;
    }
    // No mode flag: the kernel takes the driver's native XDP when it has one, else generic.
    // Attached through a BPF link, which the kernel detaches when its fd
    // closes, also when the process is killed: a program attached by
    // netlink outlived a dead capture process, and its restart then found
    // the interface taken (EBUSY). A link also refuses any program already there.
    LIBBPF_OPTS(bpf_link_create_opts, lopts);
    lopts.flags = mode == 1 ? XDP_FLAGS_DRV_MODE : mode == 2 ? XDP_FLAGS_SKB_MODE : 0;
    int link = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &lopts);
    if (link < 0) {
      bpf_object__close(obj);
      progs.erase(ifindex);
      return link;
    }
    p.obj = obj;
    p.mapFd = map;
    p.linkFd = link;
  }
  p.users++;
  *mapFd = p.mapFd;
  return 0;
}

void ReleaseProg(int ifindex) {
  auto it = progs.find(ifindex);
  if (it == progs.end() || --it->second.users > 0) return;
  close(it->second.linkFd);
  bpf_object__close(it->second.obj);
  progs.erase(it);
}

void Release(Xsk* x) {
  if (x->xsk) xsk_socket__delete(x->xsk);
  if (x->ifindex) ReleaseProg(x->ifindex);
  x->ifindex = 0;
  if (x->umem) xsk_umem__delete(x->umem);
  if (x->area) munmap(x->area, x->areaLen);
  x->xsk = nullptr;
  x->umem = nullptr;
  x->area = nullptr;
  x->open = false;
}

void Unref(Xsk* x) {
  if (--x->refs == 0) {
    Release(x);
    delete x;
  }
}
void FinalizeHandle(Napi::Env, Xsk* x) { Unref(x); }
void FinalizeArea(Napi::Env, void*, Xsk* x) { Unref(x); }

Xsk* GetXsk(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "xdp: expected a socket handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<Xsk>>().Data();
}

// Gives `n` frames back to the kernel through the fill ring.
bool Refill(Xsk* x, const uint64_t* addrs, size_t n) {
  if (n == 0) return true;
  uint32_t idx = 0;
  if (xsk_ring_prod__reserve(&x->fq, static_cast<uint32_t>(n), &idx) != n) return false;
  for (size_t i = 0; i < n; i++) *xsk_ring_prod__fill_addr(&x->fq, idx + static_cast<uint32_t>(i)) = addrs[i];
  xsk_ring_prod__submit(&x->fq, static_cast<uint32_t>(n));
  return true;
}

// xdpOpen(ifname, queue, frameCount, frameSize, mode 0 auto|1 native|2 generic, zeroCopy)
//   -> [handle, umem ArrayBuffer, fd]
Napi::Value XdpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  unsigned queue = info[1].As<Napi::Number>().Uint32Value();
  unsigned frames = info[2].As<Napi::Number>().Uint32Value();
  unsigned frameSize = info[3].As<Napi::Number>().Uint32Value();
  int mode = info[4].As<Napi::Number>().Int32Value();
  bool zeroCopy = info[5].ToBoolean();
  // libbpf/libxdp narrate to stderr (missing bpffs, ELF sections); failures come back as return codes.
  libbpf_set_print(nullptr);
  libxdp_set_print(nullptr);
  auto* x = new Xsk();
  x->name = name + " queue " + std::to_string(queue);
  x->frameSize = frameSize;
  x->areaLen = static_cast<size_t>(frames) * frameSize;
  x->area = mmap(nullptr, x->areaLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (x->area == MAP_FAILED) {
    int err = errno;
    x->area = nullptr;
    delete x;
    return ThrowErrno(env, "mmap UMEM for", name, err);
  }
  auto fail = [&](const char* what, int rc) {
    Release(x);
    delete x;
    return ThrowErrno(env, what, name, rc < 0 ? -rc : rc);
  };
  xsk_umem_config ucfg = {};
  // Twice the frames: the kernel publishes its fill-ring consumer position
  // only when it has used up the entries it last cached, so up to a ring's
  // worth of consumed entries still look occupied; with room for just
  // `frames`, handing a batch back could find the ring "full" (ENOSPC).
  ucfg.fill_size = frames * 2;
  ucfg.comp_size = 64;
  ucfg.frame_size = frameSize;
  int rc = xsk_umem__create(&x->umem, x->area, x->areaLen, &x->fq, &x->cq, &ucfg);
  if (rc) return fail("xsk_umem__create", rc);
  xsk_socket_config scfg = {};
  scfg.rx_size = frames;
  scfg.tx_size = 0;
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  scfg.bind_flags = static_cast<uint16_t>((zeroCopy ? XDP_ZEROCOPY : XDP_COPY) | XDP_USE_NEED_WAKEUP);
  rc = xsk_socket__create(&x->xsk, name.c_str(), queue, x->umem, &x->rx, nullptr, &scfg);
  if (rc) return fail("xsk_socket__create", rc);
  int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
  if (ifindex == 0) return fail("if_nametoindex", errno);
  int mapFd = -1;
  rc = AcquireProg(ifindex, mode, &mapFd);
  if (rc) return fail("attach XDP program to", rc);
  x->ifindex = ifindex;
  rc = xsk_socket__update_xskmap(x->xsk, mapFd);
  if (rc) return fail("xsk_socket__update_xskmap", rc);
  std::vector<uint64_t> all(frames);
  for (unsigned i = 0; i < frames; i++) all[i] = static_cast<uint64_t>(i) * frameSize;
  if (!Refill(x, all.data(), all.size())) return fail("fill ring", ENOSPC);
  x->open = true;
  auto ab = Napi::ArrayBuffer::New(env, x->area, x->areaLen, FinalizeArea, x);
  x->ab = Napi::Weak(ab);
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::External<Xsk>::New(env, x, FinalizeHandle));
  out.Set(1u, ab);
  out.Set(2u, Napi::Number::New(env, xsk_socket__fd(x->xsk)));
  return out;
}

// xdpRecv(handle, descs Uint32Array, tsOut Float64Array(2)) -> frames listed.
// descs gets (offset in UMEM, length) pairs; the frames stay valid until the
// next call, which first hands them back. tsOut: CLOCK_REALTIME sec, nsec
// when the batch was taken (copy-mode AF_XDP carries no kernel timestamp).
Napi::Value XdpRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = GetXsk(info);
  if (!x) return env.Undefined();
  if (!x->open) return ThrowErrno(env, "xdp receive on", x->name, EBADF);
  auto descs = info[1].As<Napi::Uint32Array>();
  auto ts = info[2].As<Napi::Float64Array>();
  if (!Refill(x, x->pending.data(), x->pending.size())) return ThrowErrno(env, "xdp fill ring of", x->name, ENOSPC);
  x->pending.clear();
  if (xsk_ring_prod__needs_wakeup(&x->fq)) recvfrom(xsk_socket__fd(x->xsk), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  uint32_t idx = 0;
  uint32_t max = static_cast<uint32_t>(descs.ElementLength() / 2);
  uint32_t n = xsk_ring_cons__peek(&x->rx, max, &idx);
  for (uint32_t i = 0; i < n; i++) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
    uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
    descs[2 * i] = static_cast<uint32_t>(addr);
    descs[2 * i + 1] = d->len;
    x->pending.push_back(xsk_umem__extract_addr(d->addr));
  }
  if (n) xsk_ring_cons__release(&x->rx, n);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  ts[0] = static_cast<double>(now.tv_sec);
  ts[1] = static_cast<double>(now.tv_nsec);
  return Napi::Number::New(env, n);
}

// xdpStats(handle, out Float64Array(4)): rx_dropped, rx_invalid_descs, rx_ring_full, rx_fill_ring_empty_descs (totals).
Napi::Value XdpStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = GetXsk(info);
  if (!x) return env.Undefined();
  if (!x->open) return ThrowErrno(env, "xdp statistics of", x->name, EBADF);
  xdp_statistics st = {};
  socklen_t len = sizeof(st);
  if (getsockopt(xsk_socket__fd(x->xsk), SOL_XDP, XDP_STATISTICS, &st, &len) != 0)
    return ThrowErrno(env, "getsockopt(XDP_STATISTICS)", x->name, errno);
  auto out = info[1].As<Napi::Float64Array>();
  out[0] = static_cast<double>(st.rx_dropped);
  out[1] = static_cast<double>(st.rx_invalid_descs);
  out[2] = static_cast<double>(st.rx_ring_full);
  out[3] = static_cast<double>(st.rx_fill_ring_empty_descs);
  return env.Undefined();
}

Napi::Value XdpClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = GetXsk(info);
  if (!x || !x->open) return env.Undefined();
  if (!x->ab.IsEmpty()) {
    Napi::ArrayBuffer ab = x->ab.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
  }
  Release(x);
  return env.Undefined();
}

Napi::Value XdpAvailable(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ""); }

#else  // !OTUS_HAVE_XDP

Napi::Value XdpAvailable(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), "the addon was built without libxdp (install libxdp-dev and libbpf-dev, then rebuild it)");
}

Napi::Value XdpUnavailable(const Napi::CallbackInfo& info) {
  return ThrowErrno(info.Env(), "AF_XDP", "(built without libxdp)", ENOSYS);
}

#endif

}  // namespace

void RegisterXdp(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpAvailable", Napi::Function::New(env, XdpAvailable, "xdpAvailable"));
#ifdef OTUS_HAVE_XDP
  exports.Set("xdpOpen", Napi::Function::New(env, XdpOpen, "xdpOpen"));
  exports.Set("xdpRecv", Napi::Function::New(env, XdpRecv, "xdpRecv"));
  exports.Set("xdpStats", Napi::Function::New(env, XdpStats, "xdpStats"));
  exports.Set("xdpClose", Napi::Function::New(env, XdpClose, "xdpClose"));
#else
  for (const char* n : {"xdpOpen", "xdpRecv", "xdpStats", "xdpClose"}) exports.Set(n, Napi::Function::New(env, XdpUnavailable, n));
#endif
}

}  // namespace otus

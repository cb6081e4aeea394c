// libpcap: BPF compilation for every driver, and the pcap live driver (one
// stream, for compatibility). pcapDispatch copies a batch of frames into one
// JavaScript buffer per call; JavaScript walks it.
#include <napi.h>
#include <pcap/pcap.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "capture.h"
#include "otus.h"

namespace otus {
namespace {

Napi::Value ThrowPcap(Napi::Env env, const std::string& what, const std::string& detail) {
  Napi::Error e = Napi::Error::New(env, what + ": " + detail);
  e.Set("code", Napi::String::New(env, "OTUS_ERR_FILTER"));
  e.Set("pcapError", Napi::String::New(env, detail));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// compileBpf(text, snaplen, linktype) -> Buffer of struct sock_filter
// (8 bytes each: u16 code, u8 jt, u8 jf, u32 k, host order), as
// SO_ATTACH_FILTER takes it. Throws {code: OTUS_ERR_FILTER, pcapError}.
Napi::Value CompileBpf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string text = info[0].As<Napi::String>();
  int snaplen = info[1].As<Napi::Number>().Int32Value();
  int linktype = info[2].As<Napi::Number>().Int32Value();
  pcap_t* p = pcap_open_dead(linktype, snaplen);
  if (!p) return ThrowPcap(env, "pcap_open_dead", "out of memory");
  struct bpf_program prog;
  if (pcap_compile(p, &prog, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    std::string err = pcap_geterr(p);
    pcap_close(p);
    return ThrowPcap(env, "pcap_compile", err);
  }
  auto out = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(prog.bf_insns), prog.bf_len * sizeof(struct bpf_insn));
  pcap_freecode(&prog);
  pcap_close(p);
  return out;
}

struct Live {
  pcap_t* p = nullptr;
  std::string name;
};

struct Batch {
  uint8_t* buf;
  size_t cap;
  size_t used;
  size_t reserve;  // room one more frame may need
  unsigned frames;
  pcap_t* p;
};

void FinalizeLive(Napi::Env, Live* l) {
  if (l->p) pcap_close(l->p);
  delete l;
}

Live* GetLive(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "pcap: expected a handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<Live>>().Data();
}

// pcapOpen(iface, snaplen, promisc, bufferBytes, filter|null) -> [handle, selectable fd, linktype]
Napi::Value PcapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  int snaplen = info[1].As<Napi::Number>().Int32Value();
  bool promisc = info[2].ToBoolean();
  int bufferBytes = info[3].As<Napi::Number>().Int32Value();
  char errbuf[PCAP_ERRBUF_SIZE] = "";
  pcap_t* p = pcap_create(name.c_str(), errbuf);
  if (!p) return ThrowErrno(env, "pcap_create", name + " (" + errbuf + ")", ENODEV);
  pcap_set_snaplen(p, snaplen);
  pcap_set_promisc(p, promisc ? 1 : 0);
  pcap_set_immediate_mode(p, 1);
  pcap_set_buffer_size(p, bufferBytes);
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  int rc = pcap_activate(p);
  if (rc < 0) {
    std::string err = pcap_statustostr(rc);
    if (rc == PCAP_ERROR || rc == PCAP_ERROR_NO_SUCH_DEVICE || rc == PCAP_ERROR_PERM_DENIED)
      err += std::string(" (") + pcap_geterr(p) + ")";
    pcap_close(p);
    return ThrowErrno(env, "pcap_activate", name + ": " + err, rc == PCAP_ERROR_PERM_DENIED ? EPERM : ENODEV);
  }
  if (info.Length() > 4 && info[4].IsString()) {
    std::string text = info[4].As<Napi::String>();
    struct bpf_program prog;
    if (pcap_compile(p, &prog, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      std::string err = pcap_geterr(p);
      pcap_close(p);
      return ThrowPcap(env, "pcap_compile", err);
    }
    rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) {
      std::string err = pcap_geterr(p);
      pcap_close(p);
      return ThrowPcap(env, "pcap_setfilter", err);
    }
  }
  if (pcap_setnonblock(p, 1, errbuf) != 0) {
    pcap_close(p);
    return ThrowErrno(env, "pcap_setnonblock", name + " (" + errbuf + ")", EINVAL);
  }
  int fd = pcap_get_selectable_fd(p);
  auto* l = new Live();
  l->p = p;
  l->name = name;
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::External<Live>::New(env, l, FinalizeLive));
  out.Set(1u, Napi::Number::New(env, fd));
  out.Set(2u, Napi::Number::New(env, pcap_datalink(p)));
  return out;
}

void OnPacket(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes) {
  auto* b = reinterpret_cast<Batch*>(user);
  uint8_t* o = b->buf + b->used;
  uint32_t hdr[4] = {static_cast<uint32_t>(h->ts.tv_sec), static_cast<uint32_t>(h->ts.tv_usec), h->caplen, h->len};
  std::memcpy(o, hdr, sizeof(hdr));
  std::memcpy(o + sizeof(hdr), bytes, h->caplen);
  b->used += (sizeof(hdr) + h->caplen + 3) & ~static_cast<size_t>(3);
  b->frames++;
  if (b->cap - b->used < b->reserve) pcap_breakloop(b->p);
}

// pcapDispatch(handle, buf Uint8Array) -> frames copied into buf, each as
// u32 sec, u32 nsec, u32 caplen, u32 len (host order), then caplen bytes,
// padded to 4. buf must hold 16 + snaplen + 3 bytes at least.
Napi::Value PcapDispatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live* l = GetLive(info);
  if (!l) return env.Undefined();
  if (!l->p) return ThrowErrno(env, "pcap_dispatch", l->name, EBADF);
  auto u8 = info[1].As<Napi::Uint8Array>();
  Batch b{u8.Data(), u8.ByteLength(), 0, static_cast<size_t>(pcap_snapshot(l->p)) + 19, 0, l->p};
  if (b.cap < b.reserve) return ThrowErrno(env, "pcap_dispatch buffer for", l->name, ENOBUFS);
  int rc = pcap_dispatch(l->p, -1, OnPacket, reinterpret_cast<u_char*>(&b));
  if (rc == PCAP_ERROR) return ThrowErrno(env, "pcap_dispatch", l->name + " (" + pcap_geterr(l->p) + ")", EIO);
  return Napi::Number::New(env, b.frames);
}

// pcapStats(handle, out Float64Array(3)): ps_recv, ps_drop, ps_ifdrop (totals since open).
Napi::Value PcapStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live* l = GetLive(info);
  if (!l) return env.Undefined();
  if (!l->p) return ThrowErrno(env, "pcap_stats", l->name, EBADF);
  struct pcap_stat st = {};
  if (pcap_stats(l->p, &st) != 0) return ThrowErrno(env, "pcap_stats", l->name + " (" + pcap_geterr(l->p) + ")", EIO);
  auto out = info[1].As<Napi::Float64Array>();
  out[0] = st.ps_recv;
  out[1] = st.ps_drop;
  out[2] = st.ps_ifdrop;
  return env.Undefined();
}

Napi::Value PcapClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live* l = GetLive(info);
  if (!l) return env.Undefined();
  if (l->p) pcap_close(l->p);
  l->p = nullptr;
  return env.Undefined();
}

}  // namespace

void RegisterPcap(Napi::Env env, Napi::Object exports) {
  exports.Set("compileBpf", Napi::Function::New(env, CompileBpf, "compileBpf"));
  exports.Set("pcapOpen", Napi::Function::New(env, PcapOpen, "pcapOpen"));
  exports.Set("pcapDispatch", Napi::Function::New(env, PcapDispatch, "pcapDispatch"));
  exports.Set("pcapStats", Napi::Function::New(env, PcapStats, "pcapStats"));
  exports.Set("pcapClose", Napi::Function::New(env, PcapClose, "pcapClose"));
}

}  // namespace otus

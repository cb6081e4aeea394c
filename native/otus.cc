// Otus native addon: the syscalls JavaScript cannot make. No parsing here.
// Every function validates its arguments loosely (JS validates first) and
// reports failures as JS errors carrying errno, never by aborting.
#include "otus.h"

#include <napi.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace otus {

Napi::Value ThrowErrno(Napi::Env env, const char* what, const std::string& subject, int err) {
  std::string msg = std::string(what) + " " + subject + ": " + std::strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, "OTUS_ERR_SYSCALL"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace otus

namespace {

using otus::ThrowErrno;

struct Mapping {
  void* addr;
  size_t len;
};

void Unmap(Napi::Env, void*, Mapping* m) {
  munmap(m->addr, m->len);
  delete m;
}

// mapFile(path) -> ArrayBuffer over a private copy-on-write mapping of the
// whole file, unmapped when the ArrayBuffer is collected. Capture files are
// read in place through it instead of being copied onto the JS heap.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "mapFile(path): path must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>();
  // O_NONBLOCK: a FIFO with no writer would block open() forever; it is refused below (not a regular file).
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ThrowErrno(env, "open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "fstat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return ThrowErrno(env, "map", path, EINVAL);
  }
  size_t len = static_cast<size_t>(st.st_size);
  if (len == 0) {
    close(fd);
    return Napi::ArrayBuffer::New(env, 0);
  }
  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (addr == MAP_FAILED) return ThrowErrno(env, "mmap", path, err);
  madvise(addr, len, MADV_SEQUENTIAL);
  auto* m = new Mapping{addr, len};
  return Napi::ArrayBuffer::New(env, addr, len, Unmap, m);
}

// setAffinity(cpu): pin the calling thread (the process's main thread) to one CPU.
Napi::Value SetAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setAffinity(cpu): cpu must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int cpu = info[0].As<Napi::Number>().Int32Value();
  if (cpu < 0 || cpu >= CPU_SETSIZE) return ThrowErrno(env, "sched_setaffinity", std::to_string(cpu), EINVAL);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    return ThrowErrno(env, "sched_setaffinity", std::to_string(cpu), errno);
  return env.Undefined();
}

// pageBuffer(bytes) -> zeroed anonymous memory on a page boundary, faulted
// in on first touch, unmapped when collected. For tables laid out in cache
// lines: a JS ArrayBuffer this large comes from malloc, 16 bytes past a page
// boundary, so its 64-byte sets would straddle two lines.
Napi::Value PageBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "pageBuffer(bytes): bytes must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double want = info[0].As<Napi::Number>().DoubleValue();
  if (!(want > 0) || want > 1e11) return ThrowErrno(env, "pageBuffer", std::to_string(want), EINVAL);
  size_t len = static_cast<size_t>(want);
  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) return ThrowErrno(env, "mmap", "pageBuffer", errno);
  auto* m = new Mapping{addr, len};
  return Napi::ArrayBuffer::New(env, addr, len, Unmap, m);
}

// threadCpuNs(): CPU time of the calling thread in nanoseconds, for benchmarks
// that must not count the GC's helper threads or the sender.
Napi::Value ThreadCpuNs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("setAffinity", Napi::Function::New(env, SetAffinity, "setAffinity"));
  exports.Set("pageBuffer", Napi::Function::New(env, PageBuffer, "pageBuffer"));
  exports.Set("threadCpuNs", Napi::Function::New(env, ThreadCpuNs, "threadCpuNs"));
  otus::RegisterAfPacket(env, exports);
  otus::RegisterShm(env, exports);
  otus::RegisterSys(env, exports);
#ifdef OTUS_HAVE_KAFKA
  otus::RegisterKafka(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(otus_native, Init)

// POSIX shared memory and futex wakeups for the send ring and the flow
// registry (src/shm/). Syscalls only: the layouts live in TypeScript.
//
//   shmOpen(name, size, create, mirrorFrom[, populate]) -> ArrayBuffer over a MAP_SHARED mapping
//   shmUnlink(name) -> boolean (false if it was already gone)
//   shmList(prefix) -> names in /dev/shm starting with prefix (each with a leading '/')
//   futexWait(buffer, byteOffset, expected, timeoutMs) -> Promise<number>
//   futexWake(buffer, byteOffset, count) -> number of waiters woken
#include "otus.h"

#include <napi.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace otus {

namespace {

struct ShmMapping {
  void* addr;
  size_t len;
};

void UnmapShm(Napi::Env, void*, ShmMapping* m) {
  munmap(m->addr, m->len);
  delete m;
}

bool ValidName(const std::string& name) {
  // One path component after the leading slash, as shm_open(3) wants.
  if (name.size() < 2 || name.size() > 250 || name[0] != '/') return false;
  return name.find('/', 1) == std::string::npos;
}

// shmOpen(name, size, create, mirrorFrom): create (O_EXCL, ftruncate to size)
// or open an existing segment (size 0: take the segment's size; otherwise the
// segment must be exactly that size). With mirrorFrom > 0 (page-aligned), the
// bytes [mirrorFrom, size) are mapped a second time right after the segment,
// so a record that wraps the end of a ring's data area is contiguous in
// memory (the BPF ring buffer does the same with its data pages). The
// ArrayBuffer is size + (size - mirrorFrom) bytes; unmapped when collected.
// With populate, every page is faulted in now (MAP_POPULATE): a ring is
// written end to end, and a page fault per 4 KiB of records on the hot path
// was a few per cent of a capture process's CPU.
Napi::Value ShmOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "shmOpen(name, size, create, mirrorFrom[, populate])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>();
  double sizeArg = info[1].As<Napi::Number>().DoubleValue();
  bool create = info[2].As<Napi::Boolean>();
  double mirrorArg = info[3].As<Napi::Number>().DoubleValue();
  int populate = info.Length() > 4 && info[4].ToBoolean() ? MAP_POPULATE : 0;
  long page = sysconf(_SC_PAGESIZE);
  if (!ValidName(name) || sizeArg < 0 || sizeArg > 1e12 || (create && sizeArg == 0) || mirrorArg < 0)
    return ThrowErrno(env, "shm_open", name, EINVAL);
  size_t size = static_cast<size_t>(sizeArg);
  size_t mirrorFrom = static_cast<size_t>(mirrorArg);

  int fd = create ? shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                  : shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "shm_open", name, errno);
  if (create) {
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      int err = errno;
      close(fd);
      shm_unlink(name.c_str());
      return ThrowErrno(env, "ftruncate", name, err);
    }
  } else {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "fstat", name, err);
    }
    if (size == 0) size = static_cast<size_t>(st.st_size);
    if (size == 0 || static_cast<size_t>(st.st_size) != size) {
      close(fd);
      return ThrowErrno(env, "shm size", name, EINVAL);
    }
  }
  if (mirrorFrom != 0 && (mirrorFrom >= size || mirrorFrom % page != 0 || size % page != 0)) {
    close(fd);
    return ThrowErrno(env, "shm mirror", name, EINVAL);
  }
  size_t total = size + (mirrorFrom ? size - mirrorFrom : 0);
  // Reserve the whole range first so the mirror lands right after the segment.
  void* base = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "mmap", name, err);
  }
  void* a = mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | populate, fd, 0);
  int err = errno;
  if (a != MAP_FAILED && mirrorFrom != 0) {
    void* b = mmap(static_cast<char*>(base) + size, size - mirrorFrom, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED | populate, fd, static_cast<off_t>(mirrorFrom));
    if (b == MAP_FAILED) {
      err = errno;
      a = MAP_FAILED;
    }
  }
  close(fd);
  if (a == MAP_FAILED) {
    munmap(base, total);
    return ThrowErrno(env, "mmap", name, err);
  }
  auto* m = new ShmMapping{base, total};
  return Napi::ArrayBuffer::New(env, base, total, UnmapShm, m);
}

Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "shmUnlink(name)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>();
  if (!ValidName(name)) return ThrowErrno(env, "shm_unlink", name, EINVAL);
  if (shm_unlink(name.c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  return ThrowErrno(env, "shm_unlink", name, errno);
}

Napi::Value ShmList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "shmList(prefix)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string prefix = info[0].As<Napi::String>();
  if (!prefix.empty() && prefix[0] == '/') prefix.erase(0, 1);
  Napi::Array out = Napi::Array::New(env);
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return ThrowErrno(env, "opendir", "/dev/shm", errno);
  uint32_t n = 0;
  while (struct dirent* e = readdir(d)) {
    std::string entry = e->d_name;
    if (entry == "." || entry == "..") continue;
    if (entry.compare(0, prefix.size(), prefix) == 0) out.Set(n++, Napi::String::New(env, "/" + entry));
  }
  closedir(d);
  return out;
}

// The futex word must lie inside the buffer and be 4-byte aligned. Shared
// (not FUTEX_PRIVATE) futexes: waiter and waker are different processes.
int32_t* FutexWord(const Napi::CallbackInfo& info, Napi::Env env) {
  if (info.Length() < 3 || !info[0].IsArrayBuffer() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "futex(buffer, byteOffset, value, ...)").ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  int64_t off = info[1].As<Napi::Number>().Int64Value();
  if (off < 0 || off % 4 != 0 || static_cast<size_t>(off) + 4 > ab.ByteLength()) {
    ThrowErrno(env, "futex", "offset " + std::to_string(off), EINVAL);
    return nullptr;
  }
  return reinterpret_cast<int32_t*>(static_cast<char*>(ab.Data()) + off);
}

// Waits on a libuv worker thread; resolves 0 when woken or when the word no
// longer holds `expected`, 1 on timeout. Holds a reference to the buffer so
// the mapping outlives the wait.
class FutexWaitWorker : public Napi::AsyncWorker {
 public:
  FutexWaitWorker(Napi::Env env, Napi::ArrayBuffer ab, int32_t* word, int32_t expected, double timeoutMs)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), word_(word), expected_(expected),
        timeoutMs_(timeoutMs) {
    buffer_ = Napi::Persistent(ab);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(timeoutMs_ / 1000);
    ts.tv_nsec = static_cast<long>((timeoutMs_ - static_cast<double>(ts.tv_sec) * 1000) * 1e6);
    long r = syscall(SYS_futex, word_, FUTEX_WAIT, expected_, &ts, nullptr, 0);
    result_ = (r != 0 && errno == ETIMEDOUT) ? 1 : 0;  // EAGAIN (value changed) and EINTR count as woken
  }
  void OnOK() override {
    buffer_.Reset();
    deferred_.Resolve(Napi::Number::New(Env(), result_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
  int32_t* word_;
  int32_t expected_;
  double timeoutMs_;
  int result_ = 0;
};

Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = FutexWord(info, env);
  if (word == nullptr) return env.Undefined();
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeoutMs = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 1000;
  if (!(timeoutMs >= 0) || timeoutMs > 3.6e6) timeoutMs = 1000;
  auto* w = new FutexWaitWorker(env, info[0].As<Napi::ArrayBuffer>(), word, expected, timeoutMs);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value FutexWake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = FutexWord(info, env);
  if (word == nullptr) return env.Undefined();
  int count = info[2].As<Napi::Number>().Int32Value();
  if (count <= 0) count = INT_MAX;
  long r = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  if (r < 0) return ThrowErrno(env, "futex_wake", "", errno);
  return Napi::Number::New(env, static_cast<double>(r));
}

}  // namespace

void RegisterShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmOpen", Napi::Function::New(env, ShmOpen, "shmOpen"));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink, "shmUnlink"));
  exports.Set("shmList", Napi::Function::New(env, ShmList, "shmList"));
  exports.Set("futexWait", Napi::Function::New(env, FutexWait, "futexWait"));
  exports.Set("futexWake", Napi::Function::New(env, FutexWake, "futexWake"));
}

}  // namespace otus

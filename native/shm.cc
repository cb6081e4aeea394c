// POSIX shared memory and the send ring's wakeup FIFO (src/shm/). Syscalls
// only: the layouts live in TypeScript.
//
//   shmOpen(name, size, create, mirrorFrom[, populate]) -> ArrayBuffer over a MAP_SHARED mapping
//   shmUnlink(name) -> boolean (false if it was already gone)
//   shmList(prefix) -> names in /dev/shm starting with prefix (each with a leading '/')
//   fifoOpen(path, create) -> fd: create: a fresh FIFO (0600) opened read-write
//     (it never sees end-of-file), else an existing one opened write-only;
//     both non-blocking
//   fdSignal(fd) -> false if the FIFO is full or has no reader
//   fdDrain(fd) -> bytes read until it is empty (a short read ends it)
#include "otus.h"

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
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

Napi::Value FifoOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "fifoOpen(path, create)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>();
  bool create = info[1].As<Napi::Boolean>();
  if (create) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return ThrowErrno(env, "unlink", path, errno);
    if (mkfifo(path.c_str(), 0600) != 0) return ThrowErrno(env, "mkfifo", path, errno);
  }
  int fd = open(path.c_str(), (create ? O_RDWR : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open", path, errno);
  return Napi::Number::New(env, fd);
}

Napi::Value FdSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char one = 1;
  ssize_t r = write(info[0].As<Napi::Number>().Int32Value(), &one, 1);
  return Napi::Boolean::New(env, r == 1);  // EAGAIN: a wakeup is pending anyway; EPIPE: the reader is gone
}

Napi::Value FdDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  char buf[256];
  double n = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r > 0) n += static_cast<double>(r);
    if (r < static_cast<ssize_t>(sizeof buf)) break;  // short read: empty now (no second read to hear EAGAIN)
  }
  return Napi::Number::New(env, n);
}

}  // namespace

void RegisterShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmOpen", Napi::Function::New(env, ShmOpen, "shmOpen"));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink, "shmUnlink"));
  exports.Set("shmList", Napi::Function::New(env, ShmList, "shmList"));
  exports.Set("fifoOpen", Napi::Function::New(env, FifoOpen, "fifoOpen"));
  exports.Set("fdSignal", Napi::Function::New(env, FdSignal, "fdSignal"));
  exports.Set("fdDrain", Napi::Function::New(env, FdDrain, "fdDrain"));
}

}  // namespace otus

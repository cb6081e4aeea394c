// The kafka reporter's producer (src/sender-proc/kafka.ts; docs/reporters.md):
// librdkafka called straight from the sender's thread, one call per message
// with numbers and byte views only. The npm binding converted each message's
// headers into librdkafka's on the main thread (objects, property names, two
// UTF-8 copies each) and cost 3-4× the rest of a message.
//
// librdkafka is not linked: kafkaOpen() loads the shared library the
// @confluentinc/kafka-javascript package built (its path comes from the
// caller) with dlopen, so processes that never send to Kafka (capture
// processes, the supervisor) map none of it.
//
//   kafkaOpen(lib, conf[]) -> handle          conf: name, value, name, value, ...
//   kafkaTopic(h, name) -> index of the topic handle
//   kafkaProduce(h, topic, value, off, len, stage) -> 0 or librdkafka's error code
//   kafkaPoll(h) -> undefined, or {acked, failed: [name, n, ...], stats, error, log}
//   kafkaFlush(h, ms) -> messages still queued or in flight
//   kafkaPurge(h)                             gives up what is queued or in flight
//   kafkaErrName(code) -> librdkafka's name of an error code
//   kafkaClose(h)
//
// stage holds the message's key and headers as the reporter wrote them:
//   u32 key length (0xffffffff: no key), key, u16 header count,
//   then per header: u16 name length, name, u32 value length, value
// (lengths little-endian). Callbacks: delivery reports (counted here, by
// outcome: the caller keeps exact figures without a JS call per message),
// errors and statistics are served by rd_kafka_poll on this thread; log
// lines come from librdkafka's threads.
#include "otus.h"

#include <napi.h>

#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "rdkafka.h"

namespace otus {

namespace {

// librdkafka's functions, from the library kafkaOpen loaded.
struct Api {
  bool loaded = false;
  decltype(&rd_kafka_conf_new) conf_new;
  decltype(&rd_kafka_conf_set) conf_set;
  decltype(&rd_kafka_conf_destroy) conf_destroy;
  decltype(&rd_kafka_conf_set_opaque) conf_set_opaque;
  decltype(&rd_kafka_conf_set_dr_msg_cb) conf_set_dr_msg_cb;
  decltype(&rd_kafka_conf_set_error_cb) conf_set_error_cb;
  decltype(&rd_kafka_conf_set_stats_cb) conf_set_stats_cb;
  decltype(&rd_kafka_conf_set_log_cb) conf_set_log_cb;
  decltype(&rd_kafka_new) kafka_new;
  decltype(&rd_kafka_destroy) destroy;
  decltype(&rd_kafka_topic_new) topic_new;
  decltype(&rd_kafka_topic_destroy) topic_destroy;
  decltype(&rd_kafka_produceva) produceva;
  decltype(&rd_kafka_error_code) error_code;
  decltype(&rd_kafka_error_destroy) error_destroy;
  decltype(&rd_kafka_headers_new) headers_new;
  decltype(&rd_kafka_header_add) header_add;
  decltype(&rd_kafka_headers_destroy) headers_destroy;
  decltype(&rd_kafka_poll) poll;
  decltype(&rd_kafka_flush) flush;
  decltype(&rd_kafka_outq_len) outq_len;
  decltype(&rd_kafka_purge) purge;
  decltype(&rd_kafka_err2name) err2name;
  decltype(&rd_kafka_err2str) err2str;
  decltype(&rd_kafka_opaque) opaque;
};

Api api;

template <typename F>
bool Sym(void* lib, const char* name, F& out, std::string& missing) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (out == nullptr) missing = name;
  return out != nullptr;
}

// Loads the library once per process; "" or why not.
std::string Load(const std::string& path) {
  if (api.loaded) return "";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = dlerror();
    return e != nullptr ? e : "dlopen failed";
  }
  std::string m;
  bool ok = Sym(lib, "rd_kafka_conf_new", api.conf_new, m) && Sym(lib, "rd_kafka_conf_set", api.conf_set, m) &&
            Sym(lib, "rd_kafka_conf_destroy", api.conf_destroy, m) && Sym(lib, "rd_kafka_conf_set_opaque", api.conf_set_opaque, m) &&
            Sym(lib, "rd_kafka_conf_set_dr_msg_cb", api.conf_set_dr_msg_cb, m) &&
            Sym(lib, "rd_kafka_conf_set_error_cb", api.conf_set_error_cb, m) &&
            Sym(lib, "rd_kafka_conf_set_stats_cb", api.conf_set_stats_cb, m) &&
            Sym(lib, "rd_kafka_conf_set_log_cb", api.conf_set_log_cb, m) && Sym(lib, "rd_kafka_new", api.kafka_new, m) &&
            Sym(lib, "rd_kafka_destroy", api.destroy, m) && Sym(lib, "rd_kafka_topic_new", api.topic_new, m) &&
            Sym(lib, "rd_kafka_topic_destroy", api.topic_destroy, m) && Sym(lib, "rd_kafka_produceva", api.produceva, m) &&
            Sym(lib, "rd_kafka_error_code", api.error_code, m) && Sym(lib, "rd_kafka_error_destroy", api.error_destroy, m) &&
            Sym(lib, "rd_kafka_headers_new", api.headers_new, m) && Sym(lib, "rd_kafka_header_add", api.header_add, m) &&
            Sym(lib, "rd_kafka_headers_destroy", api.headers_destroy, m) && Sym(lib, "rd_kafka_poll", api.poll, m) &&
            Sym(lib, "rd_kafka_flush", api.flush, m) && Sym(lib, "rd_kafka_outq_len", api.outq_len, m) &&
            Sym(lib, "rd_kafka_purge", api.purge, m) && Sym(lib, "rd_kafka_err2name", api.err2name, m) &&
            Sym(lib, "rd_kafka_err2str", api.err2str, m) && Sym(lib, "rd_kafka_opaque", api.opaque, m);
  if (!ok) {
    dlclose(lib);
    return path + " has no " + m + " (librdkafka 2.x is needed)";
  }
  api.loaded = true;
  return "";
}

struct Producer {
  rd_kafka_t* rk = nullptr;
  std::vector<rd_kafka_topic_t*> topics;
  // Filled by the callbacks rd_kafka_poll serves (this thread).
  double acked = 0;
  std::map<std::string, double> failed;
  std::string stats;
  std::string error;
  // Written by librdkafka's threads.
  std::mutex logLock;
  std::string log;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* p = static_cast<Producer*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    p->acked += 1;
  else
    p->failed[api.err2name(m->err)] += 1;
}

void OnError(rd_kafka_t*, int, const char* reason, void* opaque) {
  static_cast<Producer*>(opaque)->error = reason;
}

int OnStats(rd_kafka_t*, char* json, size_t len, void* opaque) {
  static_cast<Producer*>(opaque)->stats.assign(json, len);
  return 0;  // librdkafka frees json
}

// syslog levels: errors and warnings only (a refused connection is a warning).
void OnLog(const rd_kafka_t* rk, int level, const char*, const char* line) {
  if (level > 4) return;
  auto* p = static_cast<Producer*>(api.opaque(rk));
  if (p == nullptr) return;
  std::lock_guard<std::mutex> g(p->logLock);
  p->log = line;
}

void Close(Producer* p) {
  if (p->rk == nullptr) return;
  for (rd_kafka_topic_t* t : p->topics) api.topic_destroy(t);
  p->topics.clear();
  api.destroy(p->rk);
  p->rk = nullptr;
}

Producer* Get(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "kafka: not a producer handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  Producer* p = info[0].As<Napi::External<Producer>>().Data();
  if (p->rk == nullptr) {
    Napi::Error::New(info.Env(), "kafka: the producer was closed").ThrowAsJavaScriptException();
    return nullptr;
  }
  return p;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "kafkaOpen(lib, conf)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string why = Load(info[0].As<Napi::String>());
  if (!why.empty()) {
    Napi::Error::New(env, "cannot load librdkafka: " + why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array kv = info[1].As<Napi::Array>();
  rd_kafka_conf_t* conf = api.conf_new();
  char err[512];
  for (uint32_t i = 0; i + 1 < kv.Length(); i += 2) {
    std::string k = kv.Get(i).ToString();
    std::string v = kv.Get(i + 1).ToString();
    if (api.conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      api.conf_destroy(conf);
      Napi::Error::New(env, k + ": " + err).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  auto* p = new Producer();
  api.conf_set_opaque(conf, p);
  api.conf_set_dr_msg_cb(conf, OnDelivery);
  api.conf_set_error_cb(conf, OnError);
  api.conf_set_stats_cb(conf, OnStats);
  api.conf_set_log_cb(conf, OnLog);
  p->rk = api.kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));  // owns conf on success
  if (p->rk == nullptr) {
    api.conf_destroy(conf);
    delete p;
    Napi::Error::New(env, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::External<Producer>::New(env, p, [](Napi::Env, Producer* q) {
    Close(q);
    delete q;
  });
}

Napi::Value Topic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Producer* p = Get(info);
  if (p == nullptr) return env.Undefined();
  std::string name = info[1].ToString();
  rd_kafka_topic_t* t = api.topic_new(p->rk, name.c_str(), nullptr);
  if (t == nullptr) {
    Napi::Error::New(env, "kafka: topic " + name + " refused").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  p->topics.push_back(t);
  return Napi::Number::New(env, static_cast<double>(p->topics.size() - 1));
}

// The bytes of a Uint8Array argument.
bool Bytes(const Napi::Value& v, uint8_t*& data, size_t& len) {
  if (!v.IsTypedArray()) return false;
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  data = a.Data();
  len = a.ByteLength();
  return true;
}

Napi::Value Produce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Producer* p = Get(info);
  if (p == nullptr) return env.Undefined();
  uint32_t topic = info[1].As<Napi::Number>().Uint32Value();
  uint8_t* value;
  size_t valueLen;
  uint8_t* st;
  size_t stLen;
  if (topic >= p->topics.size() || !Bytes(info[2], value, valueLen) || !Bytes(info[5], st, stLen)) {
    Napi::TypeError::New(env, "kafkaProduce(h, topic, value, off, len, stage)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t off = info[3].As<Napi::Number>().Uint32Value();
  size_t len = info[4].As<Napi::Number>().Uint32Value();
  if (off > valueLen || len > valueLen - off) {
    Napi::RangeError::New(env, "kafkaProduce: value or stage out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  rd_kafka_vu_t vu[5];
  size_t n = 0;
  vu[n].vtype = RD_KAFKA_VTYPE_RKT;
  vu[n++].u.rkt = p->topics[topic];
  vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[n].u.mem.ptr = value + off;
  vu[n++].u.mem.size = len;
  vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
  // The stage, read with bounds checks: a malformed one is refused, not read past.
  auto u16 = [st](size_t o) { return static_cast<size_t>(st[o] | (st[o + 1] << 8)); };
  auto u32 = [st](size_t o) { return static_cast<size_t>(st[o]) | (static_cast<size_t>(st[o + 1]) << 8) | (static_cast<size_t>(st[o + 2]) << 16) | (static_cast<size_t>(st[o + 3]) << 24); };
  if (stLen < 6) return Napi::Number::New(env, RD_KAFKA_RESP_ERR__BAD_MSG);
  size_t keyLen = u32(0);
  size_t at = 4;
  if (keyLen != 0xffffffffu) {
    if (stLen - at < keyLen + 2) return Napi::Number::New(env, RD_KAFKA_RESP_ERR__BAD_MSG);
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = st + at;
    vu[n++].u.mem.size = keyLen;
    at += keyLen;
  }
  size_t count = u16(at);
  at += 2;
  rd_kafka_headers_t* hdrs = nullptr;
  if (count > 0) {
    hdrs = api.headers_new(count);
    size_t i = 0;
    for (; i < count; i++) {
      if (stLen - at < 2) break;
      size_t nl = u16(at);
      at += 2;
      if (stLen - at < nl + 4) break;
      const char* name = reinterpret_cast<const char*>(st + at);
      size_t vl = u32(at + nl);
      at += nl + 4;
      if (vl > stLen - at) break;
      api.header_add(hdrs, name, static_cast<ssize_t>(nl), st + at, static_cast<ssize_t>(vl));
      at += vl;
    }
    if (i != count) {
      api.headers_destroy(hdrs);
      return Napi::Number::New(env, RD_KAFKA_RESP_ERR__BAD_MSG);
    }
    vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[n++].u.headers = hdrs;
  }
  rd_kafka_error_t* e = api.produceva(p->rk, vu, n);
  if (e == nullptr) return Napi::Number::New(env, 0);  // librdkafka owns hdrs now
  rd_kafka_resp_err_t code = api.error_code(e);
  api.error_destroy(e);
  if (hdrs != nullptr) api.headers_destroy(hdrs);
  return Napi::Number::New(env, code);
}

Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Producer* p = Get(info);
  if (p == nullptr) return env.Undefined();
  api.poll(p->rk, 0);
  std::string log;
  {
    std::lock_guard<std::mutex> g(p->logLock);
    log.swap(p->log);
  }
  if (p->acked == 0 && p->failed.empty() && p->stats.empty() && p->error.empty() && log.empty()) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("acked", Napi::Number::New(env, p->acked));
  Napi::Array failed = Napi::Array::New(env, 2 * p->failed.size());
  uint32_t i = 0;
  for (const auto& f : p->failed) {
    failed.Set(i++, Napi::String::New(env, f.first));
    failed.Set(i++, Napi::Number::New(env, f.second));
  }
  o.Set("failed", failed);
  o.Set("stats", p->stats.empty() ? env.Null() : Napi::String::New(env, p->stats));
  o.Set("error", p->error.empty() ? env.Null() : Napi::String::New(env, p->error));
  o.Set("log", log.empty() ? env.Null() : Napi::String::New(env, log));
  p->acked = 0;
  p->failed.clear();
  p->stats.clear();
  p->error.clear();
  return o;
}

// rd_kafka_flush with a short timeout: sends what lingers at once and serves delivery reports; the caller loops.
Napi::Value Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Producer* p = Get(info);
  if (p == nullptr) return env.Undefined();
  api.flush(p->rk, info[1].As<Napi::Number>().Int32Value());
  return Napi::Number::New(env, api.outq_len(p->rk));
}

Napi::Value Purge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Producer* p = Get(info);
  if (p == nullptr) return env.Undefined();
  api.purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  return env.Undefined();
}

Napi::Value ErrName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!api.loaded || info.Length() < 1 || !info[0].IsNumber()) return Napi::String::New(env, "unknown");
  return Napi::String::New(env, api.err2name(static_cast<rd_kafka_resp_err_t>(info[0].As<Napi::Number>().Int32Value())));
}

Napi::Value CloseFn(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsExternal()) Close(info[0].As<Napi::External<Producer>>().Data());
  return info.Env().Undefined();
}

}  // namespace

void RegisterKafka(Napi::Env env, Napi::Object exports) {
  exports.Set("kafkaOpen", Napi::Function::New(env, Open, "kafkaOpen"));
  exports.Set("kafkaTopic", Napi::Function::New(env, Topic, "kafkaTopic"));
  exports.Set("kafkaProduce", Napi::Function::New(env, Produce, "kafkaProduce"));
  exports.Set("kafkaPoll", Napi::Function::New(env, Poll, "kafkaPoll"));
  exports.Set("kafkaFlush", Napi::Function::New(env, Flush, "kafkaFlush"));
  exports.Set("kafkaPurge", Napi::Function::New(env, Purge, "kafkaPurge"));
  exports.Set("kafkaErrName", Napi::Function::New(env, ErrName, "kafkaErrName"));
  exports.Set("kafkaClose", Napi::Function::New(env, CloseFn, "kafkaClose"));
}

}  // namespace otus

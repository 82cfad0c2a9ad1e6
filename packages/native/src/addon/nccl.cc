// N-API over libtessera_nccl.so (native/nccl): unique ids, communicator init off the
// JS thread, and collectives enqueued on the device stream of the tensors they move.
#include "nccl.h"

#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "nccl/tessera_nccl.h"
#include "tessera/backend.h"
#include "tessera/devices.h"
#include "tessera/error.h"

namespace tessera {
namespace {

struct NcclApi {
  int (*get_unique_id)(char*) = nullptr;
  int (*init)(const char*, int, int, int, void**) = nullptr;
  int (*all_to_all)(void*, const void*, void*, size_t, void*) = nullptr;
  int (*all_gather)(void*, const void*, void*, size_t, void*) = nullptr;
  int (*all_reduce)(void*, const void*, void*, size_t, int, int, void*) = nullptr;
  int (*broadcast)(void*, const void*, void*, size_t, int, void*) = nullptr;
  int (*send_recv)(void*, const void*, size_t, int, void*, size_t, int, void*) = nullptr;
  int (*destroy)(void*) = nullptr;
  int (*version)(int*) = nullptr;
  const char* (*error)(int) = nullptr;
};

const char* const kHowToBuild =
    "rebuild @tessera/native on a CUDA host where CMake finds NCCL: install the nvidia-nccl-cu12 wheel "
    "into the python3 on PATH (PyTorch environments have it), or set TESSERA_NCCL_ROOT to a folder with "
    "include/nccl.h and lib/libnccl.so.2, then run `pnpm --filter @tessera/native run build:addon` "
    "(its configure step prints 'tessera: NCCL collectives')";

std::mutex mu;
std::string lib_path;
bool probed = false;
bool loaded = false;
int nccl_version = 0;
std::string reason;
NcclApi api;

// No NCCL in this build or process: JS gets code TESSERA_NO_NCCL.
class NcclUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// NCCL (or the wrapper) returned an error: JS gets code TESSERA_NCCL_ERROR and the code.
class NcclFailure : public std::runtime_error {
 public:
  NcclFailure(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

template <class T>
bool sym(void* lib, const char* name, T* out) {
  *out = reinterpret_cast<T>(dlsym(lib, name));
  return *out != nullptr;
}

void probe_locked() {
  if (probed) return;
  probed = true;
  if (lib_path.empty()) {
    reason = std::string("this build has no NCCL: libtessera_nccl.so was not built (no CUDA compiler, or CMake "
                         "found no nccl.h and libnccl); ") +
             kHowToBuild;
    return;
  }
  void* lib = dlopen(lib_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    reason = std::string("this build has NCCL but it could not be loaded: ") + (e ? e : "unknown error") +
             "; make libnccl.so.2 findable (LD_LIBRARY_PATH) or " + kHowToBuild;
    return;
  }
  bool ok = sym(lib, "tessera_nccl_get_unique_id", &api.get_unique_id) && sym(lib, "tessera_nccl_init", &api.init) &&
            sym(lib, "tessera_nccl_all_to_all", &api.all_to_all) &&
            sym(lib, "tessera_nccl_all_gather", &api.all_gather) &&
            sym(lib, "tessera_nccl_all_reduce", &api.all_reduce) &&
            sym(lib, "tessera_nccl_broadcast", &api.broadcast) &&
            sym(lib, "tessera_nccl_send_recv", &api.send_recv) && sym(lib, "tessera_nccl_destroy", &api.destroy) &&
            sym(lib, "tessera_nccl_version", &api.version) && sym(lib, "tessera_nccl_error", &api.error);
  if (!ok) {
    reason = "libtessera_nccl.so lacks its entry points (built from an older tree); " + std::string(kHowToBuild);
    return;
  }
  if (api.version(&nccl_version) != 0) nccl_version = 0;
  loaded = true;
}

const NcclApi& require_api() {
  std::lock_guard<std::mutex> lk(mu);
  probe_locked();
  if (!loaded) throw NcclUnavailable(reason);
  return api;
}

void check_rc(int rc, const std::string& what) {
  if (rc == 0) return;
  const char* msg = api.error ? api.error(rc) : "unknown error";
  throw NcclFailure(what + " failed: " + (msg ? msg : "unknown error") + " (code " + std::to_string(rc) + ")", rc);
}

Napi::Error make_error(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error to_js(Napi::Env env, const std::exception& ex) {
  if (auto* e = dynamic_cast<const NcclUnavailable*>(&ex)) return make_error(env, "TESSERA_NO_NCCL", e->what());
  if (auto* e = dynamic_cast<const NcclFailure*>(&ex)) {
    Napi::Error err = make_error(env, "TESSERA_NCCL_ERROR", e->what());
    err.Set("ncclCode", Napi::Number::New(env, e->code()));
    return err;
  }
  if (auto* e = dynamic_cast<const OpError*>(&ex)) {
    Napi::Error err = make_error(env, "TESSERA_OP_ERROR", e->what());
    err.Set("op", Napi::String::New(env, e->op()));
    err.Set("arg", Napi::String::New(env, e->arg()));
    return err;
  }
  if (dynamic_cast<const DeviceError*>(&ex)) return make_error(env, "TESSERA_DEVICE_ERROR", ex.what());
  if (dynamic_cast<const std::invalid_argument*>(&ex)) return make_error(env, "TESSERA_INVALID_ARGUMENT", ex.what());
  return make_error(env, "TESSERA_ERROR", ex.what());
}

template <class F>
Napi::Value guarded(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js(env, e);
  }
}

int int_arg(const Napi::Value& v, const std::string& op, const std::string& arg, int lo, int hi) {
  if (!v.IsNumber()) throw OpError(op, arg, "must be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int>(d)) || d < lo || d > hi)
    throw OpError(op, arg, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                               std::to_string(d));
  return static_cast<int>(d);
}

// "cuda:N" → N, after checking that the device exists (get_backend's clear errors).
int cuda_index(const std::string& device, Backend** backend) {
  *backend = get_backend(device);
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) == 0) return std::stoi(device.substr(5));
  throw std::invalid_argument("NCCL communicators need a CUDA device ('cuda:N'), got '" + device + "'");
}

Napi::FunctionReference* comm_ctor = nullptr;

class NcclComm : public Napi::ObjectWrap<NcclComm> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NcclComm",
                       {
                           InstanceAccessor<&NcclComm::Rank>("rank"),
                           InstanceAccessor<&NcclComm::WorldSize>("worldSize"),
                           InstanceAccessor<&NcclComm::Device>("device"),
                           InstanceAccessor<&NcclComm::Destroyed>("destroyed"),
                           InstanceMethod<&NcclComm::AllToAll>("allToAll"),
                           InstanceMethod<&NcclComm::AllGather>("allGather"),
                           InstanceMethod<&NcclComm::AllReduce>("allReduce"),
                           InstanceMethod<&NcclComm::Broadcast>("broadcast"),
                           InstanceMethod<&NcclComm::SendRecv>("sendRecv"),
                           InstanceMethod<&NcclComm::Destroy>("destroy"),
                       });
  }

  explicit NcclComm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NcclComm>(info) {}
  // Not destroyed on garbage collection: ncclCommDestroy may wait on the device.

  void set(void* comm, int rank, int world, Backend* backend) {
    comm_ = comm;
    rank_ = rank;
    world_ = world;
    backend_ = backend;
  }

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rank_); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), world_); }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), backend_ ? backend_->name() : "");
  }
  Napi::Value Destroyed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), comm_ == nullptr); }

  // send/recv checked (live, contiguous, on this communicator's device, one dtype),
  // then check(s, r) (throws OpError), then run(api, comm, send, recv, s, r, stream)
  // enqueued in the device's stream order.
  template <class C, class F>
  Napi::Value collective(const Napi::CallbackInfo& info, const char* op, int send_arg, int recv_arg, C&& check,
                         F&& run) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      if (!comm_) throw OpError(op, "comm", "was destroyed; it can no longer be used");
      Tensor s = tensor_from_js(info[send_arg], op, "send");
      Tensor r = tensor_from_js(info[recv_arg], op, "recv");
      for (const auto* t : {&s, &r}) {
        const char* arg = t == &s ? "send" : "recv";
        if (t->backend() != backend_)
          throw OpError(op, arg, "is on " + std::string(t->backend()->name()) + " but the communicator is on " +
                                     backend_->name());
        if (!t->is_contiguous()) throw OpError(op, arg, "must be contiguous");
      }
      if (s.dtype != r.dtype)
        throw OpError(op, "recv", std::string("is ") + dtype_name(r.dtype) + " but send is " + dtype_name(s.dtype));
      check(s, r);
      const NcclApi& a = require_api();
      auto rc = std::make_shared<int>(0);
      void* comm = comm_;
      const void* sp = s.data();
      void* rp = r.data();
      const size_t sb = s.nbytes();
      const size_t rb = r.nbytes();
      const int64_t n = s.numel();
      const int dt = static_cast<int>(s.dtype);
      // The CUDA backend runs this at once on the calling thread, in its stream's order.
      backend_->submit([=, &a](const ExecCtx& ctx) { *rc = run(a, comm, sp, rp, sb, rb, n, dt, ctx.stream); },
                       {s.storage, r.storage});
      check_rc(*rc, std::string("nccl ") + op);
      return info.Env().Undefined();
    });
  }

  // allToAll(send, recv): equal sizes, divisible by the world size.
  Napi::Value AllToAll(const Napi::CallbackInfo& info) {
    const int world = world_;
    return collective(
        info, "allToAll", 0, 1,
        [world](const Tensor& s, const Tensor& r) {
          if (s.nbytes() != r.nbytes()) throw OpError("allToAll", "recv", "must have as many bytes as send");
          if (s.nbytes() % world)
            throw OpError("allToAll", "send",
                          "has " + std::to_string(s.nbytes()) + " bytes, which the world size " +
                              std::to_string(world) + " does not divide");
        },
        [world](const NcclApi& a, void* c, const void* sp, void* rp, size_t sb, size_t, int64_t, int, void* st) {
          return a.all_to_all(c, sp, rp, sb / world, st);
        });
  }

  // allGather(send, recv): recv holds worldSize × send.
  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    const int world = world_;
    return collective(
        info, "allGather", 0, 1,
        [world](const Tensor& s, const Tensor& r) {
          if (r.nbytes() != s.nbytes() * static_cast<size_t>(world))
            throw OpError("allGather", "recv", "must hold world size × send's bytes");
        },
        [](const NcclApi& a, void* c, const void* sp, void* rp, size_t sb, size_t, int64_t, int, void* st) {
          return a.all_gather(c, sp, rp, sb, st);
        });
  }

  // allReduce(send, recv, op): op is sum, prod, max, min or avg.
  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    int op = -1;
    if (info[2].IsString()) {
      const std::string o = info[2].As<Napi::String>().Utf8Value();
      const char* names[] = {"sum", "prod", "max", "min", "avg"};
      for (int i = 0; i < 5; ++i)
        if (o == names[i]) op = i;
    }
    return collective(
        info, "allReduce", 0, 1,
        [op](const Tensor& s, const Tensor& r) {
          if (op < 0) throw OpError("allReduce", "op", "must be one of sum, prod, max, min, avg");
          if (s.numel() != r.numel()) throw OpError("allReduce", "recv", "must have send's size");
        },
        [op](const NcclApi& a, void* c, const void* sp, void* rp, size_t, size_t, int64_t n, int dt, void* st) {
          return a.all_reduce(c, sp, rp, static_cast<size_t>(n), dt, op, st);
        });
  }

  // broadcast(send, recv, root)
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    const int world = world_;
    const Napi::Value rootArg = info[2];
    int root = 0;
    return collective(
        info, "broadcast", 0, 1,
        [&](const Tensor& s, const Tensor& r) {
          root = int_arg(rootArg, "broadcast", "root", 0, world - 1);
          if (s.nbytes() != r.nbytes()) throw OpError("broadcast", "recv", "must have send's size");
        },
        [&root](const NcclApi& a, void* c, const void* sp, void* rp, size_t sb, size_t, int64_t, int, void* st) {
          return a.broadcast(c, sp, rp, sb, root, st);
        });
  }

  // sendRecv(send, to, recv, from): one ring step.
  Napi::Value SendRecv(const Napi::CallbackInfo& info) {
    const int world = world_;
    int to = 0;
    int from = 0;
    return collective(
        info, "sendRecv", 0, 2,
        [&](const Tensor&, const Tensor&) {
          to = int_arg(info[1], "sendRecv", "to", 0, world - 1);
          from = int_arg(info[3], "sendRecv", "from", 0, world - 1);
        },
        [&to, &from](const NcclApi& a, void* c, const void* sp, void* rp, size_t sb, size_t rb, int64_t, int,
                     void* st) { return a.send_recv(c, sp, sb, to, rp, rb, from, st); });
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      if (!comm_) return info.Env().Undefined();
      const NcclApi& a = require_api();
      void* c = comm_;
      comm_ = nullptr;
      check_rc(a.destroy(c), "ncclCommDestroy");
      return info.Env().Undefined();
    });
  }

  void* comm_ = nullptr;
  int rank_ = 0;
  int world_ = 0;
  Backend* backend_ = nullptr;
};

// ncclCommInitRank waits for every rank: off the JS thread, so the event loop (and
// rank 0's rendezvous server) keeps running.
class InitWorker : public Napi::AsyncWorker {
 public:
  InitWorker(Napi::Env env, const char* id, int world, int rank, int index, Backend* backend)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        world_(world),
        rank_(rank),
        index_(index),
        backend_(backend) {
    std::memcpy(id_, id, TESSERA_NCCL_ID_BYTES);
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    rc_ = api.init(id_, world_, rank_, index_, &comm_);
    if (rc_) {
      const char* m = api.error(rc_);
      SetError(std::string("ncclCommInitRank (rank ") + std::to_string(rank_) + " of " + std::to_string(world_) +
               ", cuda:" + std::to_string(index_) + ") failed: " + (m ? m : "unknown error"));
    }
  }
  void OnOK() override {
    Napi::Object obj = comm_ctor->New({});
    NcclComm::Unwrap(obj)->set(comm_, rank_, world_, backend_);
    deferred_.Resolve(obj);
  }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = make_error(Env(), "TESSERA_NCCL_ERROR", e.Message());
    err.Set("ncclCode", Napi::Number::New(Env(), rc_));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  char id_[TESSERA_NCCL_ID_BYTES];
  int world_, rank_, index_;
  Backend* backend_;
  void* comm_ = nullptr;
  int rc_ = 0;
};

Napi::Value SetNcclLibrary(const Napi::CallbackInfo& info) {
  if (info[0].IsString()) set_nccl_library_path(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

Napi::Value NcclStatusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lk(mu);
  probe_locked();
  Napi::Object o = Napi::Object::New(env);
  o.Set("built", !lib_path.empty());
  o.Set("available", loaded);
  o.Set("version", nccl_version);
  o.Set("reason", loaded ? std::string() : reason);
  return o;
}

Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const NcclApi& a = require_api();
    Napi::Buffer<char> b = Napi::Buffer<char>::New(env, TESSERA_NCCL_ID_BYTES);
    check_rc(a.get_unique_id(b.Data()), "ncclGetUniqueId");
    return b;
  });
}

// ncclInit(id: Uint8Array(128), worldSize, rank, device) → Promise<NcclComm>
Napi::Value NcclInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    require_api();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().ByteLength() != TESSERA_NCCL_ID_BYTES)
      throw OpError("ncclInit", "id", "must be the " + std::to_string(TESSERA_NCCL_ID_BYTES) +
                                          "-byte unique id from ncclUniqueId() on rank 0");
    int world = int_arg(info[1], "ncclInit", "worldSize", 1, 1 << 20);
    int rank = int_arg(info[2], "ncclInit", "rank", 0, world - 1);
    if (!info[3].IsString()) throw OpError("ncclInit", "device", "must be a device name such as 'cuda:0'");
    Backend* backend = nullptr;
    int index = cuda_index(info[3].As<Napi::String>().Utf8Value(), &backend);
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    const char* id = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    auto* w = new InitWorker(env, id, world, rank, index, backend);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

}  // namespace

void set_nccl_library_path(const std::string& path) {
  std::lock_guard<std::mutex> lk(mu);
  if (!probed) lib_path = path;
}

void init_nccl(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = NcclComm::Init(env);
  comm_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
  exports.Set("NcclComm", ctor);
  exports.Set("setNcclLibrary", Napi::Function::New(env, SetNcclLibrary));
  exports.Set("ncclStatus", Napi::Function::New(env, NcclStatusJs));
  exports.Set("ncclUniqueId", Napi::Function::New(env, NcclUniqueId));
  exports.Set("ncclInit", Napi::Function::New(env, NcclInit));
}

}  // namespace tessera

// Node-API surface of @tessera/native. Deliberately small: tensors, views,
// transfers, device queries, and one `op(name, inputs, attrs)` entry point that
// reaches every registered op. The TypeScript layer gives it a typed API.
#define NAPI_VERSION 8
#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "nccl.h"
#include "ops/op.h"
#include "cpu/runtime/cpu_backend.h"
#include "tessera/devices.h"

namespace tessera {
namespace {

Napi::FunctionReference* tensor_ctor = nullptr;

Napi::Error make_error(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Runs fn, converting C++ exceptions into JS errors with a code TypeScript maps to a class.
template <class F>
Napi::Value guarded(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const OpError& e) {
    Napi::Error err = make_error(env, "TESSERA_OP_ERROR", e.what());
    err.Set("op", Napi::String::New(env, e.op()));
    err.Set("arg", Napi::String::New(env, e.arg()));
    throw err;
  } catch (const OutOfMemory& e) {
    Napi::Error err = make_error(env, "TESSERA_OOM", e.what());
    err.Set("device", Napi::String::New(env, e.device()));
    err.Set("requested", Napi::Number::New(env, static_cast<double>(e.requested())));
    throw err;
  } catch (const DeviceError& e) {
    throw make_error(env, "TESSERA_DEVICE_ERROR", e.what());
  } catch (const std::invalid_argument& e) {
    throw make_error(env, "TESSERA_INVALID_ARGUMENT", e.what());
  } catch (const std::exception& e) {
    throw make_error(env, "TESSERA_ERROR", e.what());
  }
}

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TensorHandle",
                       {
                           InstanceAccessor<&TensorHandle::Shape>("shape"),
                           InstanceAccessor<&TensorHandle::Strides>("strides"),
                           InstanceAccessor<&TensorHandle::Offset>("offset"),
                           InstanceAccessor<&TensorHandle::Dtype>("dtype"),
                           InstanceAccessor<&TensorHandle::Device>("device"),
                           InstanceAccessor<&TensorHandle::Disposed>("disposed"),
                           InstanceAccessor<&TensorHandle::Contiguous>("contiguous"),
                           InstanceMethod<&TensorHandle::Dispose>("dispose"),
                           InstanceMethod<&TensorHandle::Read>("read"),
                       });
  }

  explicit TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

  static Napi::Object Wrap(Napi::Env env, Tensor t) {
    Napi::Object obj = tensor_ctor->New({});
    Unwrap(obj)->tensor_ = std::move(t);
    return obj;
  }

  // The tensor, or a clear error naming where a disposed/foreign value was passed.
  static Tensor From(const Napi::Value& v, const std::string& op, const std::string& arg) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(tensor_ctor->Value()))
      throw OpError(op, arg, "must be a Tensor");
    TensorHandle* h = Unwrap(v.As<Napi::Object>());
    if (!h->tensor_.defined()) throw OpError(op, arg, "was disposed; it can no longer be used");
    return h->tensor_;
  }

  const Tensor& tensor() const { return tensor_; }

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info) { return ints(info.Env(), tensor_.shape); }
  Napi::Value Strides(const Napi::CallbackInfo& info) { return ints(info.Env(), tensor_.strides); }
  Napi::Value Offset(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(tensor_.offset));
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), dtype_name(tensor_.defined() ? tensor_.dtype : dtype_));
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), tensor_.defined() ? tensor_.backend()->name() : device_);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !tensor_.defined());
  }
  Napi::Value Contiguous(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), tensor_.defined() && tensor_.is_contiguous());
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (tensor_.defined()) {
      device_ = tensor_.backend()->name();
      dtype_ = tensor_.dtype;
      tensor_ = Tensor{};
    }
    return info.Env().Undefined();
  }
  Napi::Value Read(const Napi::CallbackInfo& info);

  static Napi::Array ints(Napi::Env env, const std::vector<int64_t>& v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), static_cast<double>(v[i]));
    return a;
  }

  Tensor tensor_;
  std::string device_;
  DType dtype_ = DType::F32;

};

// Waits for the device off the main thread, then hands JS an ArrayBuffer that
// owns the host copy (no second copy).
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, Tensor t)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), tensor_(std::move(t)) {
    bytes_ = tensor_.nbytes();
    host_ = static_cast<char*>(std::malloc(bytes_ == 0 ? 1 : bytes_));
    if (!host_) throw std::bad_alloc();
    fence_ = tensor_.backend()->download(tensor_.data(), host_, bytes_, tensor_.storage);
  }
  ~ReadWorker() override { std::free(host_); }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      fence_->wait();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    char* p = host_;
    host_ = nullptr;
    auto ab = Napi::ArrayBuffer::New(env, p, bytes_, [](Napi::Env, void* d) { std::free(d); });
    deferred_.Resolve(ab);
  }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = make_error(Env(), "TESSERA_DEVICE_ERROR", e.Message());
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Tensor tensor_;
  size_t bytes_ = 0;
  char* host_ = nullptr;
  std::shared_ptr<Fence> fence_;
};

Napi::Value TensorHandle::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!tensor_.defined()) throw OpError("read", "tensor", "was disposed; it can no longer be read");
    if (!tensor_.is_contiguous()) throw OpError("read", "tensor", "is not contiguous; call .contiguous() first");
    auto* w = new ReadWorker(env, tensor_);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

class SyncWorker : public Napi::AsyncWorker {
 public:
  SyncWorker(Napi::Env env, Backend* b) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), b_(b) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      b_->synchronize();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(make_error(Env(), "TESSERA_DEVICE_ERROR", e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Backend* b_;
};

std::vector<int64_t> to_shape(const Napi::Value& v, const std::string& op, const std::string& arg) {
  if (!v.IsArray()) throw OpError(op, arg, "must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > static_cast<uint32_t>(kMaxDims))
    throw OpError(op, arg, "has " + std::to_string(a.Length()) + " dims; at most " + std::to_string(kMaxDims) + " are supported");
  std::vector<int64_t> s;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throw OpError(op, arg, "must be an array of non-negative integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || std::floor(d) != d || d > 9.007199254740992e15)
      throw OpError(op, arg, "must be an array of non-negative integers, got " + std::to_string(d));
    s.push_back(static_cast<int64_t>(d));
  }
  return s;
}

DType to_dtype(const Napi::Value& v, const std::string& op) {
  if (!v.IsString()) throw OpError(op, "dtype", "must be one of f32, bf16, f16, i32, u8");
  DType d;
  if (!dtype_from_name(v.As<Napi::String>().Utf8Value(), &d))
    throw OpError(op, "dtype", "'" + v.As<Napi::String>().Utf8Value() + "' is not one of f32, bf16, f16, i32, u8");
  return d;
}

Backend* to_backend(const Napi::Value& v) {
  if (!v.IsString()) throw std::invalid_argument("device must be a string such as 'cpu' or 'cuda:0'");
  return get_backend(v.As<Napi::String>().Utf8Value());
}

// fromBuffer(device, dtype, shape, bytes: ArrayBufferView)
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend* b = to_backend(info[0]);
    DType dt = to_dtype(info[1], "fromBuffer");
    Shape shape = to_shape(info[2], "fromBuffer", "shape");
    if (!info[3].IsTypedArray() && !info[3].IsDataView())
      throw OpError("fromBuffer", "data", "must be a typed array");
    Napi::TypedArray ta = info[3].As<Napi::TypedArray>();
    const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dt);
    if (ta.ByteLength() != bytes)
      throw OpError("fromBuffer", "data", "holds " + std::to_string(ta.ByteLength()) + " bytes but shape " +
                                              shape_str(shape) + " of " + dtype_name(dt) + " needs " +
                                              std::to_string(bytes));
    Tensor t = empty(b, shape, dt);
    const char* src = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    if (bytes) b->upload(t.data(), src, bytes);
    return TensorHandle::Wrap(env, std::move(t));
  });
}

// empty(device, dtype, shape): uninitialised storage (tests poison it).
Napi::Value Empty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend* b = to_backend(info[0]);
    DType dt = to_dtype(info[1], "empty");
    Shape shape = to_shape(info[2], "empty", "shape");
    return TensorHandle::Wrap(env, empty(b, shape, dt));
  });
}

// pinnedEmpty(device, dtype, shape): an uninitialised host ("cpu") tensor whose memory
// `device` copies to and from asynchronously (page-locked for a CUDA device; an
// ordinary host tensor for the CPU).
Napi::Value PinnedEmpty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend* dev = to_backend(info[0]);
    DType dt = to_dtype(info[1], "pinnedEmpty");
    Shape shape = to_shape(info[2], "pinnedEmpty", "shape");
    Backend* host = get_backend("cpu");
    Tensor t;
    t.storage = dev->allocate_pinned(host, static_cast<size_t>(shape_numel(shape)) * dtype_size(dt));
    t.dtype = dt;
    t.shape = shape;
    t.strides = contiguous_strides(shape);
    return TensorHandle::Wrap(env, std::move(t));
  });
}

// copyAsync(dst, src): copies src into dst (same dtype and element count, both
// contiguous) between the host and a device, in the device's stream order, without
// waiting; between two host tensors, in the CPU's queue. The host tensor must not be
// disposed before the device is synchronized.
Napi::Value CopyAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Tensor dst = TensorHandle::From(info[0], "copyAsync", "dst");
    const Tensor src = TensorHandle::From(info[1], "copyAsync", "src");
    if (dst.dtype != src.dtype)
      throw OpError("copyAsync", "src", std::string("is ") + dtype_name(src.dtype) + " but dst is " + dtype_name(dst.dtype));
    if (dst.numel() != src.numel())
      throw OpError("copyAsync", "src", "has " + std::to_string(src.numel()) + " elements but dst has " +
                                           std::to_string(dst.numel()));
    if (!dst.is_contiguous()) throw OpError("copyAsync", "dst", "is not contiguous");
    if (!src.is_contiguous()) throw OpError("copyAsync", "src", "is not contiguous");
    Backend* host = get_backend("cpu");
    Backend* d = dst.backend();
    Backend* s = src.backend();
    if (d != host && s != host)
      throw OpError("copyAsync", "dst", "and src are both on devices (" + d->name() + ", " + s->name() +
                                            "); copy within a device with assign()");
    // The device side does the copy (the host with itself: a queued memcpy).
    const bool to_device = d != host;
    Backend* by = to_device ? d : s;
    // side: on the device's copy stream (Backend::copy_host_side), beside its compute.
    const bool side = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    if (side)
      by->copy_host_side(dst.data(), src.data(), dst.nbytes(), to_device, {dst.storage, src.storage});
    else
      by->copy_host(dst.data(), src.data(), dst.nbytes(), to_device, {dst.storage, src.storage});
    return env.Undefined();
  });
}

// waitCopies(device): work submitted to `device` after this waits for the copies
// made on its copy stream before it (copyAsync with side). A no-op on the CPU.
Napi::Value WaitCopies(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    to_backend(info[0])->wait_side_copies();
    return env.Undefined();
  });
}

// view(t, shape, strides, offset): a new handle over the same storage. Bounds are
// checked so no view can reach outside its storage.
Napi::Value View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Tensor src = TensorHandle::From(info[0], "view", "tensor");
    Shape shape = to_shape(info[1], "view", "shape");
    Shape strides = to_shape(info[2], "view", "strides");
    if (strides.size() != shape.size()) throw OpError("view", "strides", "must have one entry per dim");
    if (!info[3].IsNumber()) throw OpError("view", "offset", "must be a non-negative integer");
    double off = info[3].As<Napi::Number>().DoubleValue();
    if (!(off >= 0) || std::floor(off) != off) throw OpError("view", "offset", "must be a non-negative integer");
    Tensor t = src;
    t.shape = shape;
    t.strides = strides;
    t.offset = static_cast<int64_t>(off);
    const int64_t capacity = static_cast<int64_t>(src.storage->bytes / dtype_size(src.dtype));
    int64_t last = t.offset;
    bool empty_view = false;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0) empty_view = true;
      else last += (shape[i] - 1) * strides[i];
    }
    if (!empty_view && last >= capacity)
      throw OpError("view", "shape", "reaches element " + std::to_string(last) + " of a storage of " +
                                         std::to_string(capacity) + " elements");
    return TensorHandle::Wrap(env, std::move(t));
  });
}

AttrValue to_attr(Napi::Env env, const std::string& op, const std::string& key, const Napi::Value& v) {
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    std::vector<double> r;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) throw OpError(op, key, "must be an array of numbers");
      r.push_back(e.As<Napi::Number>().DoubleValue());
    }
    return r;
  }
  if (v.IsObject()) return TensorHandle::From(v, op, key);
  (void)env;
  throw OpError(op, key, "has an unsupported type");
}

// op(name, inputs: (Tensor|null)[], attrs: object) -> Tensor | Tensor[]
Napi::Value Op(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw std::invalid_argument("op name must be a string");
    OpCall call;
    call.name = info[0].As<Napi::String>().Utf8Value();
    call.attrs = Attrs(call.name);
    if (!info[1].IsArray()) throw OpError(call.name, "inputs", "must be an array of tensors");
    Napi::Array ins = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < ins.Length(); ++i) {
      Napi::Value v = ins.Get(i);
      if (v.IsNull() || v.IsUndefined()) call.inputs.emplace_back();
      else call.inputs.push_back(TensorHandle::From(v, call.name, "inputs[" + std::to_string(i) + "]"));
    }
    if (info.Length() > 2 && info[2].IsObject()) {
      Napi::Object attrs = info[2].As<Napi::Object>();
      Napi::Array keys = attrs.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
        Napi::Value v = attrs.Get(key);
        if (v.IsNull() || v.IsUndefined()) continue;
        call.attrs.set(key, to_attr(env, call.name, key, v));
      }
    }
    std::vector<Tensor> outs = run_op(call);
    if (outs.size() == 1) return TensorHandle::Wrap(env, std::move(outs[0]));
    Napi::Array r = Napi::Array::New(env, outs.size());
    for (size_t i = 0; i < outs.size(); ++i) r.Set(static_cast<uint32_t>(i), TensorHandle::Wrap(env, std::move(outs[i])));
    return r;
  });
}

Napi::Value OpNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto names = op_names();
  Napi::Array a = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

Napi::Value KernelNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto names = to_backend(info[0])->kernel_names();
    Napi::Array a = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
    return a;
  });
}

Napi::Value SetCudaLibrary(const Napi::CallbackInfo& info) {
  if (info[0].IsString()) set_cuda_library_path(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

Napi::Value CudaStatusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaStatus s = cuda_status();
  Napi::Object o = Napi::Object::New(env);
  o.Set("built", s.built);
  o.Set("available", s.available);
  o.Set("count", s.count);
  o.Set("reason", s.reason);
  return o;
}

Napi::Value DeviceInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend* b = to_backend(info[0]);
    DeviceInfo d = b->info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("description", d.description);
    o.Set("totalMemory", static_cast<double>(d.total_memory));
    o.Set("threads", d.threads);
    o.Set("sm", d.sm);
    o.Set("hasBlas", d.has_blas);
    return o;
  });
}

Napi::Value MemoryStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    MemoryStats s = to_backend(info[0])->memory_stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("inUse", static_cast<double>(s.in_use));
    o.Set("cached", static_cast<double>(s.cached));
    o.Set("peak", static_cast<double>(s.peak));
    o.Set("limit", static_cast<double>(s.limit));
    o.Set("allocations", static_cast<double>(s.allocations));
    return o;
  });
}

Napi::Value SetMemoryLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Backend* b = to_backend(info[0]);
    double lim = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    if (!(lim >= 0)) throw std::invalid_argument("memory limit must be a non-negative number of bytes");
    b->set_memory_limit(static_cast<size_t>(lim));
    return env.Undefined();
  });
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    to_backend(info[0])->empty_cache();
    return env.Undefined();
  });
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* w = new SyncWorker(env, to_backend(info[0]));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

// A captured graph; replay() reruns its work on the device's stream.
class GraphHandle : public Napi::ObjectWrap<GraphHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "GraphHandle",
                       {
                           InstanceAccessor<&GraphHandle::Disposed>("disposed"),
                           InstanceMethod<&GraphHandle::Replay>("replay"),
                           InstanceMethod<&GraphHandle::Dispose>("dispose"),
                       });
  }
  explicit GraphHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GraphHandle>(info) {}
  static Napi::Object Wrap(std::shared_ptr<Graph> g) {
    Napi::Object obj = ctor->New({});
    Unwrap(obj)->graph_ = std::move(g);
    return obj;
  }
  static Napi::FunctionReference* ctor;

 private:
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !graph_); }
  Napi::Value Replay(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      if (!graph_) throw DeviceError("this graph was disposed; capture it again");
      graph_->replay();
      return env.Undefined();
    });
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    graph_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Graph> graph_;
};
Napi::FunctionReference* GraphHandle::ctor = nullptr;

Napi::Value BeginCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    to_backend(info[0])->begin_capture();
    return env.Undefined();
  });
}

Napi::Value EndCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return GraphHandle::Wrap(to_backend(info[0])->end_capture()); });
}

Napi::Value AbortCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    to_backend(info[0])->abort_capture();
    return env.Undefined();
  });
}

Napi::Value SetPoison(const Napi::CallbackInfo& info) {
  poison_allocations() = info[0].ToBoolean().Value();
  return info.Env().Undefined();
}

// setCpuInline(on): the CPU backend runs each op as it is enqueued (cpu_backend.h).
Napi::Value SetCpuInline(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* cpu = dynamic_cast<CpuBackend*>(get_backend("cpu"));
    if (!cpu) throw std::logic_error("the CPU backend is not a CpuBackend");
    cpu->set_inline(info[0].ToBoolean().Value());
    return env.Undefined();
  });
}

}  // namespace

Tensor tensor_from_js(const Napi::Value& v, const std::string& op, const std::string& arg) {
  return TensorHandle::From(v, op, arg);
}

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = TensorHandle::Init(env);
  tensor_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
  exports.Set("TensorHandle", ctor);
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("empty", Napi::Function::New(env, Empty));
  exports.Set("pinnedEmpty", Napi::Function::New(env, PinnedEmpty));
  exports.Set("copyAsync", Napi::Function::New(env, CopyAsync));
  exports.Set("waitCopies", Napi::Function::New(env, WaitCopies));
  exports.Set("view", Napi::Function::New(env, View));
  exports.Set("op", Napi::Function::New(env, Op));
  exports.Set("opNames", Napi::Function::New(env, OpNames));
  exports.Set("kernelNames", Napi::Function::New(env, KernelNames));
  exports.Set("setCudaLibrary", Napi::Function::New(env, SetCudaLibrary));
  exports.Set("cudaStatus", Napi::Function::New(env, CudaStatusJs));
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfoJs));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStatsJs));
  exports.Set("setMemoryLimit", Napi::Function::New(env, SetMemoryLimit));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("setPoison", Napi::Function::New(env, SetPoison));
  exports.Set("setCpuInline", Napi::Function::New(env, SetCpuInline));
  Napi::Function graph_ctor = GraphHandle::Init(env);
  GraphHandle::ctor = new Napi::FunctionReference(Napi::Persistent(graph_ctor));
  exports.Set("beginCapture", Napi::Function::New(env, BeginCapture));
  exports.Set("endCapture", Napi::Function::New(env, EndCapture));
  exports.Set("abortCapture", Napi::Function::New(env, AbortCapture));
  init_nccl(env, exports);
  return exports;
}

}  // namespace
}  // namespace tessera

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }

NODE_API_MODULE(tessera, InitAddon)

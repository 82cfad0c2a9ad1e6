// The interface every compute backend implements. The CPU backend is compiled
// into the addon; the CUDA backend is a separate shared library that the addon
// opens only when a CUDA device is asked for, so a machine with no GPU or
// driver never loads it.
#pragma once
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "error.h"
#include "tensor.h"

namespace tessera {

class ThreadPool;
struct CudaKernelChoice;  // native/cuda/runtime/kernel_choice.h

// What a kernel gets besides its arguments.
struct ExecCtx {
  Backend* backend = nullptr;
  ThreadPool* pool = nullptr;      // CPU: workers for parallel_for
  void* stream = nullptr;          // CUDA: cudaStream_t
  void* blas = nullptr;            // CUDA: cublasLtHandle_t, or null when built without cuBLASLt
  void* workspace = nullptr;       // CUDA: scratch for cuBLASLt
  size_t workspace_bytes = 0;
  int sm = 0;                      // CUDA: compute capability, e.g. 90
  int sms = 0;                     // CUDA: streaming multiprocessors (persistent grids, tile choice)
  const CudaKernelChoice* cuda_choice = nullptr;  // CUDA: the TESSERA_CUDA_* switches, read at backend start
};

using KernelFn = void (*)(const void* args, const ExecCtx& ctx);

class KernelRegistry {
 public:
  void add(const std::string& name, KernelFn fn) { map_[name] = fn; }
  KernelFn find(const std::string& name) const {
    auto it = map_.find(name);
    return it == map_.end() ? nullptr : it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> r;
    for (auto& kv : map_) r.push_back(kv.first);
    return r;
  }

 private:
  std::unordered_map<std::string, KernelFn> map_;
};

#define TESSERA_CAT2(a, b) a##b
#define TESSERA_CAT(a, b) TESSERA_CAT2(a, b)
// Registers FN(const ARGS&, const ExecCtx&) as kernel NAME in REGISTRY() at load time.
#define TESSERA_REGISTER_KERNEL(REGISTRY, NAME, ARGS, FN)                                  \
  static const bool TESSERA_CAT(tessera_kernel_reg_, __LINE__) = [] {                    \
    REGISTRY().add(NAME, [](const void* a, const ::tessera::ExecCtx& c) {                \
      FN(*static_cast<const ARGS*>(a), c);                                                \
    });                                                                                   \
    return true;                                                                          \
  }()

// Completion of work submitted so far; wait() may be called from any thread.
class Fence {
 public:
  virtual ~Fence() = default;
  virtual void wait() = 0;  // throws DeviceError if the work failed
};

// A recorded sequence of device work (a CUDA graph). replay() runs it again, in
// stream order, on the same memory: the tensors the capture read are its inputs,
// the ones it wrote its outputs.
class Graph {
 public:
  virtual ~Graph() = default;
  virtual void replay() = 0;
};

struct MemoryStats {
  size_t in_use = 0;     // bytes held by live storages
  size_t cached = 0;     // bytes kept by the caching allocator for reuse
  size_t peak = 0;       // high-water mark of in_use
  size_t limit = 0;      // 0 = none
  size_t allocations = 0;  // storages alive
};

struct DeviceInfo {
  std::string name;        // "cpu" or "cuda:0"
  std::string description; // CPU model / GPU name
  size_t total_memory = 0;
  int threads = 0;         // CPU worker threads
  int sm = 0;              // CUDA compute capability
  bool has_blas = false;   // cuBLASLt linked
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::string& name() const = 0;
  virtual DeviceInfo info() const = 0;
  // Throws OutOfMemory after emptying the cache and retrying once.
  virtual std::shared_ptr<Storage> allocate(size_t bytes) = 0;
  // Called when the last reference to a storage drops, from any thread.
  virtual void release(void* ptr, size_t bytes) = 0;
  // Runs fn in this device's stream order. `keep` stays alive until fn is done.
  virtual void submit(std::function<void(const ExecCtx&)> fn,
                      std::vector<std::shared_ptr<Storage>> keep) = 0;
  // Host -> fresh storage; the host memory may be reused as soon as this returns.
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  // Device -> host after all submitted work; host_dst must stay valid until the fence is waited.
  virtual std::shared_ptr<Fence> download(const void* src, void* host_dst, size_t bytes,
                                          std::shared_ptr<Storage> keep) = 0;
  virtual void synchronize() = 0;
  // Host memory that this device copies to and from asynchronously, as a storage of
  // `host` (the CPU backend: CPU ops may use it as any host tensor). CUDA: page-locked
  // (cudaMallocHost), freed with cudaFreeHost. Here, for a device that is itself the
  // host: an ordinary host allocation.
  virtual std::shared_ptr<Storage> allocate_pinned(Backend* host, size_t bytes) { return host->allocate(bytes); }
  // Copies `bytes` between host memory and this device's memory in this device's
  // stream order, returning before it is done (to_device: host -> device, else
  // device -> host). `keep` stays alive until the copy is. Here (the host itself): a
  // memcpy queued behind the work already submitted.
  virtual void copy_host(void* dst, const void* src, size_t bytes, bool /*to_device*/,
                         std::vector<std::shared_ptr<Storage>> keep) {
    submit([dst, src, bytes](const ExecCtx&) { std::memcpy(dst, src, bytes); }, std::move(keep));
  }
  // copy_host on the device's copy stream, beside its compute: the copy starts once
  // the work submitted so far is done (so it may overwrite what that work read) and
  // runs while later work computes; compute waits for it only at
  // wait_side_copies(). Here (no second stream): copy_host.
  virtual void copy_host_side(void* dst, const void* src, size_t bytes, bool to_device,
                              std::vector<std::shared_ptr<Storage>> keep) {
    copy_host(dst, src, bytes, to_device, std::move(keep));
  }
  // Work submitted after this waits for every copy_host_side() made before it.
  virtual void wait_side_copies() {}
  virtual KernelFn kernel(const std::string& name) const = 0;
  virtual std::vector<std::string> kernel_names() const = 0;
  virtual MemoryStats memory_stats() const = 0;
  virtual void set_memory_limit(size_t bytes) = 0;
  virtual void empty_cache() = 0;
  // Graph capture: work submitted between begin_capture() and end_capture() is
  // recorded, not run. Uploads, reads and synchronize() are refused meanwhile.
  // abort_capture() drops a capture that failed part way.
  virtual void begin_capture() {
    throw DeviceError("graph capture needs a CUDA device; " + name() + " runs ops as they are submitted");
  }
  virtual std::shared_ptr<Graph> end_capture() {
    throw DeviceError("no graph capture is in progress on " + name());
  }
  virtual void abort_capture() {}
};

// When set, every new allocation is filled with 0xFF bytes (NaN for floats) before
// use, so a kernel that leaves an output element unwritten is caught by tests.
inline bool& poison_allocations() {
  static bool on = false;
  return on;
}

inline Storage::~Storage() {
  if (free_fn) {
    if (ptr) free_fn(ptr);
  } else if (backend && ptr) backend->release(ptr, bytes);
}

// Entry point the CUDA shared library exports (C linkage so dlsym finds it).
// Returns null and fills `error` when no usable device exists.
using CudaBackendFactory = Backend* (*)(int device_index, std::string* error);
using CudaDeviceCount = int (*)(std::string* error);

}  // namespace tessera

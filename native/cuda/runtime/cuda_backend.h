// The CUDA backend: one stream per device, a caching allocator over cudaMalloc,
// and (where built with it) a cuBLASLt handle with workspace. Kernels launch on
// the stream as ops are submitted; reads back wait on an event off the JS thread.
// Graph capture records the stream's work into a CUDA graph whose memory comes
// from its own pool (see caching_allocator.h).
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tessera/backend.h"
#include "tessera/caching_allocator.h"

namespace tessera {

KernelRegistry& cuda_kernels();

// Throws DeviceError naming the call when a CUDA call fails.
void cuda_check(cudaError_t e, const char* what);
#define TESSERA_CUDA_CHECK(expr) ::tessera::cuda_check((expr), #expr)
// Checks the last launch (call right after <<<...>>>).
#define TESSERA_CUDA_CHECK_LAUNCH(name) ::tessera::cuda_check(cudaGetLastError(), name)

class CudaBackend : public Backend {
 public:
  CudaBackend(int index);
  ~CudaBackend() override;
  const std::string& name() const override { return name_; }
  DeviceInfo info() const override { return info_; }
  std::shared_ptr<Storage> allocate(size_t bytes) override;
  void release(void* ptr, size_t bytes) override;
  void submit(std::function<void(const ExecCtx&)> fn, std::vector<std::shared_ptr<Storage>> keep) override;
  void upload(void* dst, const void* src, size_t bytes) override;
  std::shared_ptr<Fence> download(const void* src, void* host_dst, size_t bytes,
                                  std::shared_ptr<Storage> keep) override;
  void synchronize() override;
  std::shared_ptr<Storage> allocate_pinned(Backend* host, size_t bytes) override;
  void copy_host(void* dst, const void* src, size_t bytes, bool to_device,
                 std::vector<std::shared_ptr<Storage>> keep) override;
  void copy_host_side(void* dst, const void* src, size_t bytes, bool to_device,
                      std::vector<std::shared_ptr<Storage>> keep) override;
  void wait_side_copies() override;
  KernelFn kernel(const std::string& name) const override { return cuda_kernels().find(name); }
  std::vector<std::string> kernel_names() const override { return cuda_kernels().names(); }
  MemoryStats memory_stats() const override { return alloc_.stats(); }
  void set_memory_limit(size_t bytes) override { alloc_.set_limit(bytes); }
  void empty_cache() override { alloc_.empty_cache(); }
  void begin_capture() override;
  std::shared_ptr<Graph> end_capture() override;
  void abort_capture() override;

  // Called by a graph when it is dropped: frees it now, or after the capture in
  // progress (freeing waits for the stream, which a capture forbids).
  struct Retired {
    cudaGraphExec_t exec;
    std::shared_ptr<GraphPool> pool;
  };
  void retire(Retired r);
  bool capturing() const { return capturing_.load(); }
  cudaStream_t stream() const { return stream_; }

 private:
  void refuse_during_capture(const char* what) const;
  void capture_over();
  void free_retired(std::vector<Retired> list);

  int index_;
  std::string name_;
  DeviceInfo info_;
  cudaStream_t stream_ = nullptr;
  // The copy stream (created at the first copy_host_side) and its two events: the
  // compute stream's progress a copy waits for, and the copies compute waits for.
  std::mutex copy_mu_;
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t compute_mark_ = nullptr;
  cudaEvent_t copies_mark_ = nullptr;
  CachingAllocator alloc_;
  ExecCtx ctx_;
  std::atomic<bool> capturing_{false};
  std::thread::id capture_thread_;
  std::mutex capture_mu_;  // with capture_done_: other threads' synchronize() waits out a capture
  std::condition_variable capture_done_;
  std::mutex retired_mu_;
  std::vector<Retired> retired_;
};

}  // namespace tessera

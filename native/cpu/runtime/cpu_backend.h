// The CPU backend: fp32 reference kernels run on one executor thread in submit
// order (the CPU's "stream"), each using the thread pool. JS only enqueues, so a
// whole forward pass runs off the main thread and the event loop stays free.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "tessera/backend.h"
#include "tessera/caching_allocator.h"
#include "thread_pool.h"

namespace tessera {

KernelRegistry& cpu_kernels();

class CpuBackend : public Backend {
 public:
  CpuBackend();
  ~CpuBackend() override;
  const std::string& name() const override { return name_; }
  DeviceInfo info() const override;
  std::shared_ptr<Storage> allocate(size_t bytes) override;
  void release(void* ptr, size_t bytes) override;
  void submit(std::function<void(const ExecCtx&)> fn, std::vector<std::shared_ptr<Storage>> keep) override;
  void upload(void* dst, const void* src, size_t bytes) override;
  std::shared_ptr<Fence> download(const void* src, void* host_dst, size_t bytes,
                                  std::shared_ptr<Storage> keep) override;
  void synchronize() override;
  KernelFn kernel(const std::string& name) const override { return cpu_kernels().find(name); }
  std::vector<std::string> kernel_names() const override { return cpu_kernels().names(); }
  MemoryStats memory_stats() const override { return alloc_.stats(); }
  void set_memory_limit(size_t bytes) override { alloc_.set_limit(bytes); }
  void empty_cache() override { alloc_.empty_cache(); }
  ThreadPool& pool() { return pool_; }
  // Inline execution: each op runs on the submitting thread as it is enqueued, and
  // the storages it holds are released as it returns, so memory is freed in program
  // order, as on a CUDA stream (the executor otherwise lets JS run ahead, holding every
  // queued op's inputs). For tests and memory measurement: it blocks the caller.
  // Switching waits for the queue to drain first. TESSERA_CPU_INLINE=1 starts on.
  void set_inline(bool on);

 private:
  struct Task {
    std::function<void(const ExecCtx&)> fn;
    std::vector<std::shared_ptr<Storage>> keep;
  };
  void run_loop();
  void rethrow_deferred();

  std::string name_ = "cpu";
  ThreadPool pool_;
  CachingAllocator alloc_;
  std::mutex mu_;
  std::condition_variable cv_, cv_idle_;
  std::deque<Task> queue_;
  bool busy_ = false, stop_ = false;
  std::atomic<bool> inline_{false};
  std::exception_ptr deferred_;
  std::thread executor_;
};

}  // namespace tessera

#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace tessera {

KernelRegistry& cpu_kernels() {
  static KernelRegistry r;
  return r;
}

namespace {

void* aligned_raw_alloc(size_t bytes) {
  // 64-byte alignment keeps AVX-512 loads on cache lines.
  return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "cpu";
}

class CpuFence : public Fence {
 public:
  void signal(std::exception_ptr err) {
    std::lock_guard<std::mutex> lk(mu_);
    done_ = true;
    err_ = err;
    cv_.notify_all();
  }
  void wait() override {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return done_; });
    if (err_) std::rethrow_exception(err_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr err_;
};

}  // namespace

CpuBackend::CpuBackend()
    : pool_(default_thread_count()), alloc_("cpu", aligned_raw_alloc, [](void* p) { std::free(p); }) {
  if (const char* lim = std::getenv("TESSERA_CPU_MEMORY_LIMIT")) alloc_.set_limit(std::strtoull(lim, nullptr, 10));
  if (const char* in = std::getenv("TESSERA_CPU_INLINE")) inline_ = std::strcmp(in, "1") == 0;
  executor_ = std::thread([this] { run_loop(); });
}

CpuBackend::~CpuBackend() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  executor_.join();
}

DeviceInfo CpuBackend::info() const {
  DeviceInfo d;
  d.name = "cpu";
  d.description = cpu_model();
  d.threads = pool_.size();
  return d;
}

std::shared_ptr<Storage> CpuBackend::allocate(size_t bytes) {
  void* p = alloc_.allocate(bytes);
  if (poison_allocations()) std::memset(p, 0xff, bytes);
  return std::make_shared<Storage>(this, p, bytes);
}

void CpuBackend::release(void* ptr, size_t) { alloc_.free(ptr); }

void CpuBackend::submit(std::function<void(const ExecCtx&)> fn, std::vector<std::shared_ptr<Storage>> keep) {
  if (inline_.load()) {
    // The queue is empty (set_inline drained it), so running here keeps submit order.
    ExecCtx ctx;
    ctx.backend = this;
    ctx.pool = &pool_;
    try {
      fn(ctx);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!deferred_) deferred_ = std::current_exception();
    }
    return;  // `keep` is released here, before the next op is enqueued
  }
  std::lock_guard<std::mutex> lk(mu_);
  queue_.push_back(Task{std::move(fn), std::move(keep)});
  cv_.notify_one();
}

void CpuBackend::upload(void* dst, const void* src, size_t bytes) {
  // A fresh storage has no pending users, so the copy can happen right here.
  std::memcpy(dst, src, bytes);
}

std::shared_ptr<Fence> CpuBackend::download(const void* src, void* host_dst, size_t bytes,
                                            std::shared_ptr<Storage> keep) {
  auto fence = std::make_shared<CpuFence>();
  submit(
      [fence, src, host_dst, bytes, this](const ExecCtx&) {
        std::exception_ptr err;
        {
          std::lock_guard<std::mutex> lk(mu_);
          err = deferred_;
          deferred_ = nullptr;
        }
        if (!err) std::memcpy(host_dst, src, bytes);
        fence->signal(err);
      },
      {std::move(keep)});
  return fence;
}

void CpuBackend::set_inline(bool on) {
  if (on == inline_.load()) return;
  std::unique_lock<std::mutex> lk(mu_);
  cv_idle_.wait(lk, [&] { return queue_.empty() && !busy_; });
  inline_ = on;
}

void CpuBackend::synchronize() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_idle_.wait(lk, [&] { return queue_.empty() && !busy_; });
  if (deferred_) {
    auto e = deferred_;
    deferred_ = nullptr;
    std::rethrow_exception(e);
  }
}

void CpuBackend::run_loop() {
  ExecCtx ctx;
  ctx.backend = this;
  ctx.pool = &pool_;
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    try {
      task.fn(ctx);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!deferred_) deferred_ = std::current_exception();
    }
    task.keep.clear();  // release storages before we report idle
    {
      std::lock_guard<std::mutex> lk(mu_);
      busy_ = false;
      if (queue_.empty()) cv_idle_.notify_all();
    }
  }
}

}  // namespace tessera

// A fixed pool of worker threads for data-parallel CPU kernels. The calling
// thread takes a share of the work too, so a pool of N threads uses N cores.
#pragma once
#include <atomic>
#include <exception>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into contiguous chunks of at least
  // `grain` items. Runs inline when n is small or when already inside the pool.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunk_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  int64_t num_chunks_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;  // first exception thrown by a chunk, rethrown to the caller
  std::mutex run_mu_;  // one parallel_for at a time
};

int default_thread_count();

}  // namespace tessera

#include "thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace tessera {

namespace {
thread_local bool in_pool = false;
}

int default_thread_count() {
  if (const char* env = std::getenv("TESSERA_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int) {
  in_pool = true;
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* job;
    int64_t n, chunk, chunks;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      chunk = job_chunk_;
      chunks = num_chunks_;
    }
    try {
      for (;;) {
        int64_t c = next_chunk_.fetch_add(1);
        if (c >= chunks) break;
        int64_t b = c * chunk;
        (*job)(b, std::min(n, b + chunk));
      }
    } catch (...) {
      // Stop handing out chunks and let the caller rethrow (an exception escaping a
      // worker thread would terminate the process).
      next_chunk_.store(chunks);
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_ == 0) cv_done_.notify_all();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t threads = size();
  if (in_pool || threads == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> run(run_mu_);
  // A few chunks per thread balance uneven work without much overhead.
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, threads * 4);
  int64_t chunk = (n + chunks - 1) / chunks;
  chunks = (n + chunk - 1) / chunk;
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunk_ = chunk;
    num_chunks_ = chunks;
    next_chunk_.store(0);
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  cv_start_.notify_all();
  in_pool = true;
  std::exception_ptr mine;
  try {
    for (;;) {
      int64_t c = next_chunk_.fetch_add(1);
      if (c >= chunks) break;
      int64_t b = c * chunk;
      fn(b, std::min(n, b + chunk));
    }
  } catch (...) {
    next_chunk_.store(chunks);
    mine = std::current_exception();
  }
  in_pool = false;
  std::unique_lock<std::mutex> lk(mu_);
  cv_done_.wait(lk, [&] { return pending_ == 0; });
  job_ = nullptr;
  std::exception_ptr err = mine ? mine : error_;
  error_ = nullptr;
  if (err) std::rethrow_exception(err);
}

}  // namespace tessera

// A caching allocator shared by the backends: freed blocks go to a size-ordered
// cache and are handed out again for requests of similar size, so steady-state
// generation makes no cudaMalloc/malloc calls per op. Thread-safe: storages are
// released from whichever thread drops the last reference.
//
// Graph pools: while a CUDA graph is captured, every block handed out is recorded
// in the graph's pool and stays reserved for it (a replay writes to the same
// addresses) until the pool is released with the graph; blocks freed during the
// capture are reused only within it, which is safe because a replay runs the
// recorded work in the order it was submitted.
#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "backend.h"
#include "error.h"

namespace tessera {

// The blocks one captured graph owns.
struct GraphPool {
  std::unordered_set<void*> blocks;
  std::multimap<size_t, void*> free;  // freed during (or after) the capture
};

class CachingAllocator {
 public:
  // raw_alloc returns null on failure; raw_free releases a block from raw_alloc.
  CachingAllocator(std::string device, std::function<void*(size_t)> raw_alloc, std::function<void(void*)> raw_free)
      : device_(std::move(device)), raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}
  ~CachingAllocator() { empty_cache(); }

  static size_t round(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t q = bytes < (1u << 20) ? 512 : (1u << 20);
    return (bytes + q - 1) / q * q;
  }

  void* allocate(size_t bytes) {
    const size_t size = round(bytes);
    std::unique_lock<std::mutex> lk(mu_);
    if (limit_ && in_use_ + size > limit_) {
      throw OutOfMemory(device_, bytes, in_use_);
    }
    if (capture_) {
      // Within a capture, first reuse what the capture itself freed.
      auto it = best_fit(capture_->free, size);
      if (it != capture_->free.end()) {
        void* p = it->second;
        size_t got = it->first;
        capture_->free.erase(it);
        cached_ -= got;
        live_[p] = got;
        note_use(got);
        return p;
      }
    }
    void* p = nullptr;
    size_t got = size;
    // Best fit among cached blocks no more than twice the request.
    auto it = best_fit(cache_, size);
    if (it != cache_.end()) {
      p = it->second;
      got = it->first;
      cache_.erase(it);
      cached_ -= got;
    } else {
      p = raw_alloc_(size);
      // Freeing memory would synchronize the device, which a capture forbids.
      if (!p && capture_) throw OutOfMemory(device_, bytes, in_use_);
      if (!p) {
        release_cache_locked();
        p = raw_alloc_(size);
        if (!p) throw OutOfMemory(device_, bytes, in_use_);
      }
    }
    live_[p] = got;
    note_use(got);
    if (capture_) {
      capture_->blocks.insert(p);
      owner_[p] = capture_;
    }
    return p;
  }

  void free(void* p) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;
    size_t size = it->second;
    live_.erase(it);
    in_use_ -= size;
    cached_ += size;
    auto own = owner_.find(p);
    if (own != owner_.end()) own->second->free.emplace(size, p);
    else cache_.emplace(size, p);
  }

  // Blocks allocated from now until end_capture() belong to a new graph pool.
  void begin_capture() {
    std::lock_guard<std::mutex> lk(mu_);
    capture_ = std::make_shared<GraphPool>();
  }
  // Stops recording blocks; returns the pool (release it with the graph).
  std::shared_ptr<GraphPool> end_capture() {
    std::lock_guard<std::mutex> lk(mu_);
    return std::move(capture_);
  }

  // The graph is gone (and its last replay done): its free blocks go back to the
  // shared cache; blocks a live tensor still holds become ordinary blocks.
  void release_pool(const std::shared_ptr<GraphPool>& pool) {
    if (!pool) return;
    std::lock_guard<std::mutex> lk(mu_);
    for (void* p : pool->blocks) owner_.erase(p);
    for (auto& kv : pool->free) cache_.emplace(kv.first, kv.second);
    pool->free.clear();
    pool->blocks.clear();
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lk(mu_);
    release_cache_locked();
  }

  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    limit_ = bytes;
  }

  MemoryStats stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    MemoryStats s;
    s.in_use = in_use_;
    s.cached = cached_;
    s.peak = peak_;
    s.limit = limit_;
    s.allocations = live_.size();
    return s;
  }

 private:
  void note_use(size_t size) {
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
  }
  static std::multimap<size_t, void*>::iterator best_fit(std::multimap<size_t, void*>& m, size_t size) {
    auto it = m.lower_bound(size);
    return it != m.end() && it->first <= size * 2 ? it : m.end();
  }
  void release_cache_locked() {
    for (auto& kv : cache_) {
      raw_free_(kv.second);
      cached_ -= kv.first;  // graph pools' free blocks stay counted (and reserved)
    }
    cache_.clear();
  }

  std::string device_;
  std::function<void*(size_t)> raw_alloc_;
  std::function<void(void*)> raw_free_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> cache_;
  std::unordered_map<void*, size_t> live_;
  std::shared_ptr<GraphPool> capture_;
  std::unordered_map<void*, std::shared_ptr<GraphPool>> owner_;
  size_t in_use_ = 0, cached_ = 0, peak_ = 0, limit_ = 0;
};

}  // namespace tessera

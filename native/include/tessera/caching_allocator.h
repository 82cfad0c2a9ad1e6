// A caching allocator shared by the backends: freed blocks go to a size-ordered
// cache and are handed out again for requests of similar size, so steady-state
// generation makes no cudaMalloc/malloc calls per op. Thread-safe: storages are
// released from whichever thread drops the last reference.
#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "backend.h"
#include "error.h"

namespace tessera {

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
    // Best fit among cached blocks no more than twice the request.
    auto it = cache_.lower_bound(size);
    if (it != cache_.end() && it->first <= size * 2) {
      void* p = it->second;
      size_t got = it->first;
      cache_.erase(it);
      cached_ -= got;
      live_[p] = got;
      note_use(got);
      return p;
    }
    void* p = raw_alloc_(size);
    if (!p) {
      release_cache_locked();
      p = raw_alloc_(size);
      if (!p) throw OutOfMemory(device_, bytes, in_use_);
    }
    live_[p] = size;
    note_use(size);
    return p;
  }

  void free(void* p) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;
    size_t size = it->second;
    live_.erase(it);
    in_use_ -= size;
    cache_.emplace(size, p);
    cached_ += size;
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
  void release_cache_locked() {
    for (auto& kv : cache_) raw_free_(kv.second);
    cache_.clear();
    cached_ = 0;
  }

  std::string device_;
  std::function<void*(size_t)> raw_alloc_;
  std::function<void(void*)> raw_free_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> cache_;
  std::unordered_map<void*, size_t> live_;
  size_t in_use_ = 0, cached_ = 0, peak_ = 0, limit_ = 0;
};

}  // namespace tessera

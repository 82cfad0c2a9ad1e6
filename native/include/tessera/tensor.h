// Tensor = shared storage + shape/strides/offset. Storage is owned by the
// backend that allocated it and goes back to that backend's caching allocator
// when the last reference (JS handle or in-flight op) drops.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"

namespace tessera {

class Backend;
constexpr int kMaxDims = 8;

struct Storage {
  Backend* backend = nullptr;
  void* ptr = nullptr;
  size_t bytes = 0;
  // Set for memory the backend's allocator did not hand out (page-locked host memory
  // from the CUDA runtime, see Backend::allocate_pinned): frees it instead of release().
  void (*free_fn)(void* ptr) = nullptr;
  Storage(Backend* b, void* p, size_t n) : backend(b), ptr(p), bytes(n) {}
  ~Storage();  // defined in backend.h: returns the block to the backend
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

inline Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

inline std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

struct Tensor {
  std::shared_ptr<Storage> storage;
  DType dtype = DType::F32;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements

  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  Backend* backend() const { return storage ? storage->backend : nullptr; }
  bool defined() const { return static_cast<bool>(storage); }
  bool is_contiguous() const {
    int64_t acc = 1;
    for (int i = ndim() - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != acc) return false;
      acc *= shape[i];
    }
    return true;
  }
  void* data() const {
    return static_cast<char*>(storage->ptr) + offset * static_cast<int64_t>(dtype_size(dtype));
  }
  int64_t dim(int i) const { return shape[i < 0 ? i + ndim() : i]; }
};

// A raw strided view handed to kernels (no ownership).
struct View {
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0};
  int64_t strides[kMaxDims] = {0};
};

inline View view_of(const Tensor& t) {
  View v;
  v.data = t.data();
  v.dtype = t.dtype;
  v.ndim = t.ndim();
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = t.shape[i];
    v.strides[i] = t.strides[i];
  }
  return v;
}

}  // namespace tessera

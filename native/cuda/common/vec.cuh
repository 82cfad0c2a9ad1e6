// Small helpers for vectorised memory access and strided indexing in CUDA kernels.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "tessera/tensor.h"

namespace tessera {

// N elements of T moved as one aligned access (16 bytes for the common cases).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

inline bool aligned_to(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) % a) == 0; }

// Strided layout of up to kMaxDims dims for one or two operands, with dims of
// size 1 dropped and adjacent dims merged where every operand allows it. Kernels
// then decompose a linear index over `shape` (row-major) into per-operand offsets.
struct StridedLayout {
  int ndim = 0;
  int64_t shape[kMaxDims] = {0};
  int64_t stride[3][kMaxDims] = {{0}};  // up to 3 operands
};

// shape/strides: ndim dims; nops operands (<= 3). Returns numel.
inline int64_t collapse_layout(int ndim, const int64_t* shape, const int64_t* const* strides, int nops,
                               StridedLayout* out) {
  int64_t numel = 1;
  for (int i = 0; i < ndim; ++i) numel *= shape[i];
  StridedLayout L;
  // Keep non-unit dims, outermost first.
  for (int i = 0; i < ndim; ++i) {
    if (shape[i] == 1) continue;
    L.shape[L.ndim] = shape[i];
    for (int o = 0; o < nops; ++o) L.stride[o][L.ndim] = strides[o][i];
    ++L.ndim;
  }
  // Merge dim i into dim i-1 when for each operand stride[i-1] == stride[i] * shape[i].
  StridedLayout M;
  for (int i = 0; i < L.ndim; ++i) {
    if (M.ndim > 0) {
      bool ok = true;
      const int j = M.ndim - 1;
      for (int o = 0; o < nops; ++o)
        if (M.stride[o][j] != L.stride[o][i] * L.shape[i]) ok = false;
      if (ok) {
        M.shape[j] *= L.shape[i];
        for (int o = 0; o < nops; ++o) M.stride[o][j] = L.stride[o][i];
        continue;
      }
    }
    M.shape[M.ndim] = L.shape[i];
    for (int o = 0; o < nops; ++o) M.stride[o][M.ndim] = L.stride[o][i];
    ++M.ndim;
  }
  if (M.ndim == 0) {  // a scalar (or all-ones shape)
    M.ndim = 1;
    M.shape[0] = 1;
    for (int o = 0; o < nops; ++o) M.stride[o][0] = 1;
  }
  *out = M;
  return numel;
}

// Offsets of linear index i (row-major over L.shape) for NOPS operands.
template <int NOPS, class Idx>
__device__ __forceinline__ void strided_offsets(const StridedLayout& L, Idx i, int64_t off[NOPS]) {
#pragma unroll
  for (int o = 0; o < NOPS; ++o) off[o] = 0;
  for (int d = L.ndim - 1; d >= 0; --d) {
    const Idx s = static_cast<Idx>(L.shape[d]);
    const Idx q = i / s;
    const Idx r = i - q * s;
    i = q;
#pragma unroll
    for (int o = 0; o < NOPS; ++o) off[o] += static_cast<int64_t>(r) * L.stride[o][d];
  }
}

// Grid for a grid-stride loop over n work items (n > 0) with `threads` per block.
inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 16) {
  int64_t b = (n + threads - 1) / threads;
  if (b > max_blocks) b = max_blocks;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b);
}

}  // namespace tessera

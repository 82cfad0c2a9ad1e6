// CUDA "softmax" over the last dim of a contiguous [rows, cols] tensor, fp32 math.
// cols <= 1024: one warp per row with the row held in registers (one read, one write).
// Wider rows: one block per row, an online max/sum pass then a normalising pass.
#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/reduce.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/elementwise.h"

namespace tessera {
namespace {

// Row held in registers: lane l owns columns l, l + 32, ..., l + 32 * (PER - 1).
template <class T, int PER>
__global__ void softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int c = static_cast<int>(cols);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * warps_per_block + (threadIdx.x >> 5); r < rows; r += nwarps) {
    const T* xr = x + r * cols;
    T* orow = out + r * cols;
    float v[PER];
    float m = -INFINITY;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int col = lane + 32 * j;
      v[j] = col < c ? Elem<T>::load(xr, col) : -INFINITY;
      m = fmaxf(m, v[j]);
    }
    m = warp_max(m);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int col = lane + 32 * j;
      v[j] = col < c ? expf(v[j] - m) : 0.f;
      s += v[j];
    }
    s = warp_sum(s);
    const float inv = 1.f / s;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int col = lane + 32 * j;
      if (col < c) Elem<T>::store(orow, col, v[j] * inv);
    }
  }
}

__device__ __forceinline__ void online_push(float& m, float& s, float x) {
  if (x > m) {
    s = s * expf(m - x) + 1.f;
    m = x;
  } else {
    s += expf(x - m);  // x == -inf with m == -inf gives NaN only when every value is -inf
  }
}

__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  if (mm == -INFINITY) {
    s = s + s2;
  } else {
    s = (m == -INFINITY ? 0.f : s * expf(m - mm)) + (m2 == -INFINITY ? 0.f : s2 * expf(m2 - mm));
  }
  m = mm;
}

template <class T>
__global__ void softmax_block_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t cols) {
  __shared__ float sm[33], ss[33];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* orow = out + r * cols;
    float m = -INFINITY, s = 0.f;
    for (int64_t col = threadIdx.x; col < cols; col += blockDim.x) {
      const float v = Elem<T>::load(xr, col);
      if (v == -INFINITY) continue;  // contributes exp(-inf) = 0
      online_push(m, s, v);
    }
    // Warp merge, then across warps.
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
      const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
      online_merge(m, s, m2, s2);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) {
      sm[warp] = m;
      ss[warp] = s;
    }
    __syncthreads();
    if (warp == 0) {
      m = lane < nw ? sm[lane] : -INFINITY;
      s = lane < nw ? ss[lane] : 0.f;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        online_merge(m, s, m2, s2);
      }
      if (lane == 0) {
        sm[32] = m;
        ss[32] = s;
      }
    }
    __syncthreads();
    m = sm[32];
    const float inv = 1.f / ss[32];
    for (int64_t col = threadIdx.x; col < cols; col += blockDim.x)
      Elem<T>::store(orow, col, expf(Elem<T>::load(xr, col) - m) * inv);
  }
}

template <class T, int PER>
void launch_warp(const T* x, T* out, int64_t rows, int64_t cols, cudaStream_t stream) {
  constexpr int threads = 256;
  softmax_warp_kernel<T, PER><<<grid_for(rows, threads / 32), threads, 0, stream>>>(x, out, rows, cols);
}

void softmax_cuda(const SoftmaxArgs& p, const ExecCtx& ctx) {
  if (p.rows <= 0 || p.cols <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  dispatch_float_t(p.dtype, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(p.x);
    T* out = static_cast<T*>(p.out);
    if (p.cols <= 32) launch_warp<T, 1>(x, out, p.rows, p.cols, stream);
    else if (p.cols <= 64) launch_warp<T, 2>(x, out, p.rows, p.cols, stream);
    else if (p.cols <= 128) launch_warp<T, 4>(x, out, p.rows, p.cols, stream);
    else if (p.cols <= 256) launch_warp<T, 8>(x, out, p.rows, p.cols, stream);
    else if (p.cols <= 512) launch_warp<T, 16>(x, out, p.rows, p.cols, stream);
    else if (p.cols <= 1024) launch_warp<T, 32>(x, out, p.rows, p.cols, stream);
    else {
      constexpr int threads = 512;
      softmax_block_kernel<T><<<grid_for(p.rows, 1, 65535LL * 32), threads, 0, stream>>>(x, out, p.rows, p.cols);
    }
    TESSERA_CUDA_CHECK_LAUNCH("softmax");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "softmax", SoftmaxArgs, softmax_cuda);

}  // namespace tessera

// CUDA "norm": LayerNorm / RMSNorm over the last dim of x [B, L, C], then weight/bias,
// then adaLN modulation y * (1 + scale) + shift (scale/shift [B, C] or [B, L, C]).
// fp32 statistics, two-pass (mean, then centred second moment) over values held on chip,
// LayerNorm centred on the row's first element as the CPU reference is:
//   C % (16 / sizeof(T)) == 0, aligned, C <= 4096 (bf16): one warp per row, 16-byte accesses;
//   else C <= 1024: one warp per row, the row in registers;
//   larger C:  one block per row, the row in shared memory (or re-read from global
//              memory when it does not fit in 48 KB).
#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/reduce.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/norm.h"

namespace tessera {
namespace {

struct NormParams {
  const void* x;
  const void* weight;
  const void* bias;
  const void* scale;
  const void* shift;
  void* out;
  int64_t rows, len, channels;
  float eps;
  bool rms;
  bool per_token;
};

// y for channel c of row r given the normalised value v.
template <class T>
__device__ __forceinline__ float affine_mod(const NormParams& p, int64_t r, int64_t c, float v) {
  if (p.weight) v *= Elem<T>::load(static_cast<const T*>(p.weight), c);
  if (p.bias) v += Elem<T>::load(static_cast<const T*>(p.bias), c);
  if (p.scale || p.shift) {
    const int64_t m = (p.per_token ? r : r / p.len) * p.channels + c;
    if (p.scale) v = v * (1.f + Elem<T>::load(static_cast<const T*>(p.scale), m));
    if (p.shift) v += Elem<T>::load(static_cast<const T*>(p.shift), m);
  }
  return v;
}

template <class T, int PER>
__global__ void norm_warp_kernel(NormParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * wpb;
  const int C = static_cast<int>(p.channels);
  const float invC = 1.f / static_cast<float>(C);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * wpb + (threadIdx.x >> 5); r < p.rows; r += nwarps) {
    const T* x = static_cast<const T*>(p.x) + r * p.channels;
    // LayerNorm works on x - x[0] (as the CPU does): a large common offset then
    // costs no digits in the mean or in x - mean.
    const float x0 = p.rms ? 0.f : Elem<T>::load(x, 0);
    float v[PER];
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int c = lane + 32 * j;
      v[j] = c < C ? Elem<T>::load(x, c) - x0 : 0.f;
    }
    float mean = 0.f;
    if (!p.rms) {
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < PER; ++j) s += v[j];
      mean = warp_sum(s) * invC;
    }
    float q = 0.f;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int c = lane + 32 * j;
      const float d = c < C ? v[j] - mean : 0.f;
      q += d * d;
    }
    const float rstd = 1.f / sqrtf(warp_sum(q) * invC + p.eps);
    T* out = static_cast<T*>(p.out) + r * p.channels;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int c = lane + 32 * j;
      if (c < C) Elem<T>::store(out, c, affine_mod<T>(p, r, c, (v[j] - mean) * rstd));
    }
  }
}

// One warp per row with 16-byte accesses: lane l holds packs l, l + 32, ... (NV of them,
// V = 16 / sizeof(T) elements each) of x, and reads weight / bias / scale / shift as packs
// too. Taken when C % V == 0, every pointer is 16-byte aligned and C <= 32 * NV_max * V.
// The scalar kernels above and below move 2-byte elements one at a time and reached a
// quarter of the H100's DRAM bandwidth at the DiT's C = 1536 (docs/performance.md, Norms).
template <class T, int NV>
__global__ void norm_warp_vec_kernel(NormParams p) {
  constexpr int V = 16 / sizeof(T);
  using P = Pack<T, V>;
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * wpb;
  const int C = static_cast<int>(p.channels);
  const int np = C / V;
  const float invC = 1.f / static_cast<float>(C);
  const P* wp = static_cast<const P*>(p.weight);
  const P* bp = static_cast<const P*>(p.bias);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * wpb + (threadIdx.x >> 5); r < p.rows; r += nwarps) {
    const P* xp = reinterpret_cast<const P*>(static_cast<const T*>(p.x) + r * p.channels);
    // Centred on x[0] as the CPU reference is (see norm_warp_kernel).
    const float x0 = p.rms ? 0.f : Elem<T>::load(static_cast<const T*>(p.x) + r * p.channels, 0);
    float v[NV][V];
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int k = lane + 32 * j;
      if (k < np) {
        const P a = xp[k];
#pragma unroll
        for (int e = 0; e < V; ++e) v[j][e] = Elem<T>::load(a.v, e) - x0;
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) v[j][e] = 0.f;
      }
    }
    float mean = 0.f;
    if (!p.rms) {
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < NV; ++j)
#pragma unroll
        for (int e = 0; e < V; ++e) s += v[j][e];
      mean = warp_sum(s) * invC;
    }
    float q = 0.f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      if (lane + 32 * j >= np) continue;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float d = v[j][e] - mean;
        q += d * d;
      }
    }
    const float rstd = 1.f / sqrtf(warp_sum(q) * invC + p.eps);
    const int64_t mrow = (p.per_token ? r : r / p.len) * p.channels;
    const P* sp = p.scale ? reinterpret_cast<const P*>(static_cast<const T*>(p.scale) + mrow) : nullptr;
    const P* hp = p.shift ? reinterpret_cast<const P*>(static_cast<const T*>(p.shift) + mrow) : nullptr;
    P* op = reinterpret_cast<P*>(static_cast<T*>(p.out) + r * p.channels);
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int k = lane + 32 * j;
      if (k >= np) continue;
      float y[V];
#pragma unroll
      for (int e = 0; e < V; ++e) y[e] = (v[j][e] - mean) * rstd;
      if (wp) {
        const P w = wp[k];
#pragma unroll
        for (int e = 0; e < V; ++e) y[e] *= Elem<T>::load(w.v, e);
      }
      if (bp) {
        const P b = bp[k];
#pragma unroll
        for (int e = 0; e < V; ++e) y[e] += Elem<T>::load(b.v, e);
      }
      if (sp) {
        const P sc = sp[k];
#pragma unroll
        for (int e = 0; e < V; ++e) y[e] *= 1.f + Elem<T>::load(sc.v, e);
      }
      if (hp) {
        const P sh = hp[k];
#pragma unroll
        for (int e = 0; e < V; ++e) y[e] += Elem<T>::load(sh.v, e);
      }
      P o;
#pragma unroll
      for (int e = 0; e < V; ++e) Elem<T>::store(o.v, e, y[e]);
      op[k] = o;
    }
  }
}

// One block per row; kCache: the row is kept in dynamic shared memory as fp32.
template <class T, bool kCache>
__global__ void norm_block_kernel(NormParams p) {
  extern __shared__ float row_cache[];
  __shared__ float scratch[33];
  const int64_t C = p.channels;
  const float invC = 1.f / static_cast<float>(C);
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const T* x = static_cast<const T*>(p.x) + r * C;
    const float x0 = p.rms ? 0.f : Elem<T>::load(x, 0);  // centring, as in the warp kernel
    float mean = 0.f;
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float v = Elem<T>::load(x, c) - x0;
      if (kCache) row_cache[c] = v;
      s += v;
    }
    if (!p.rms) mean = block_sum(s, scratch) * invC;
    float q = 0.f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float d = (kCache ? row_cache[c] : Elem<T>::load(x, c) - x0) - mean;
      q += d * d;
    }
    const float rstd = 1.f / sqrtf(block_sum(q, scratch) * invC + p.eps);
    T* out = static_cast<T*>(p.out) + r * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float v = kCache ? row_cache[c] : Elem<T>::load(x, c) - x0;
      Elem<T>::store(out, c, affine_mod<T>(p, r, c, (v - mean) * rstd));
    }
    __syncthreads();  // row_cache is rewritten by the next row
  }
}

template <class T, int PER>
void launch_warp(const NormParams& p, cudaStream_t s) {
  constexpr int threads = 256;
  norm_warp_kernel<T, PER><<<grid_for(p.rows, threads / 32), threads, 0, s>>>(p);
}

template <class T, int NV>
void launch_warp_vec(const NormParams& p, cudaStream_t s) {
  // 4 warps a block: at NV = 6 (C = 1536 in bf16) a lane holds 48 floats (95 registers),
  // and smaller blocks let 5 of them share an SM instead of 2 of 8 warps.
  constexpr int threads = 128;
  norm_warp_vec_kernel<T, NV><<<grid_for(p.rows, threads / 32), threads, 0, s>>>(p);
}

// The 16-byte warp kernel for this row, if it applies: picks the smallest NV that covers
// C / V packs (NV <= 16: 4096 bf16 / 2048 f32 channels, 128 floats per lane at most).
template <class T>
bool try_launch_vec(const NormParams& p, cudaStream_t s) {
  constexpr int64_t V = 16 / sizeof(T);
  if (p.channels % V != 0) return false;
  for (const void* q : {p.x, p.weight, p.bias, p.scale, p.shift, static_cast<const void*>(p.out)})
    if (q && !aligned_to(q, 16)) return false;
  const int64_t per_lane = (p.channels / V + 31) / 32;
  if (per_lane <= 1) launch_warp_vec<T, 1>(p, s);
  else if (per_lane <= 2) launch_warp_vec<T, 2>(p, s);
  else if (per_lane <= 4) launch_warp_vec<T, 4>(p, s);
  else if (per_lane <= 6) launch_warp_vec<T, 6>(p, s);
  else if (per_lane <= 8) launch_warp_vec<T, 8>(p, s);
  else if (per_lane <= 12) launch_warp_vec<T, 12>(p, s);
  else if (per_lane <= 16) launch_warp_vec<T, 16>(p, s);
  else return false;
  return true;
}

void norm_cuda(const NormArgs& a, const ExecCtx& ctx) {
  if (a.batch <= 0 || a.len <= 0 || a.channels <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  NormParams p{a.x, a.weight, a.bias, a.scale, a.shift, a.out, a.batch * a.len, a.len, a.channels,
               a.eps, a.kind == NormKind::Rms, a.mod_per_token};
  dispatch_float_t(a.dtype, "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t C = p.channels;
    if (!try_launch_vec<T>(p, s)) {
      if (C <= 32) launch_warp<T, 1>(p, s);
      else if (C <= 64) launch_warp<T, 2>(p, s);
      else if (C <= 128) launch_warp<T, 4>(p, s);
      else if (C <= 256) launch_warp<T, 8>(p, s);
      else if (C <= 512) launch_warp<T, 16>(p, s);
      else if (C <= 1024) launch_warp<T, 32>(p, s);
      else {
        const int threads = C <= 4096 ? 256 : 512;
        const unsigned grid = grid_for(p.rows, 1, 65535LL * 32);
        const size_t cache = static_cast<size_t>(C) * sizeof(float);
        if (cache <= 48 * 1024) norm_block_kernel<T, true><<<grid, threads, cache, s>>>(p);
        else norm_block_kernel<T, false><<<grid, threads, 0, s>>>(p);
      }
    }
    TESSERA_CUDA_CHECK_LAUNCH("norm");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "norm", NormArgs, norm_cuda);

}  // namespace tessera

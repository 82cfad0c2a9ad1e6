// CUDA "group_norm": channels-last x [B, S, C], statistics per (batch, group) over
// S x C/groups values, then weight/bias and an optional SiLU.
// Three launches: (1) per-chunk Welford partials of each (batch, group), (2) one warp
// per (batch, group) merges them into mean / rstd, (3) an elementwise pass applies
// them. The partials live in a scratch block from the backend's caching allocator,
// released (in stream order, which is safe on the backend's single stream) on return.
#include <algorithm>

#include "cuda/common/activation.cuh"
#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/reduce.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/norm.h"

namespace tessera {
namespace {

constexpr int kStatThreads = 256;

// Work item w = bg * nchunk + k: chunk k of (batch, group) bg, covering flat elements
// [k * per_chunk, min(N, (k + 1) * per_chunk)) of the group's N = S x Cg values
// (flat e -> position e / Cg, channel g * Cg + e % Cg).
template <class T>
__global__ void gn_partial_kernel(const T* __restrict__ x, WelfordState* __restrict__ part, int64_t S, int64_t C,
                                  int64_t G, int64_t nchunk, int64_t per_chunk, int64_t items) {
  __shared__ WelfordState scratch[33];
  const int64_t Cg = C / G;
  const int64_t N = S * Cg;
  for (int64_t w = blockIdx.x; w < items; w += gridDim.x) {
    const int64_t bg = w / nchunk, k = w - bg * nchunk;
    const int64_t b = bg / G, g = bg - b * G;
    const T* xb = x + b * S * C + g * Cg;
    const int64_t e0 = k * per_chunk;
    const int64_t e1 = min(N, e0 + per_chunk);
    WelfordState st{0.f, 0.f, 0.f};
    for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
      const int64_t s = e / Cg, cc = e - s * Cg;
      welford_push(st, Elem<T>::load(xb, s * C + cc));
    }
    st = block_welford(st, scratch);
    if (threadIdx.x == 0) part[w] = st;
  }
}

// One warp per (batch, group): merge its nchunk partials into (mean, rstd).
__global__ void gn_finalize_kernel(const WelfordState* __restrict__ part, float2* __restrict__ stats, int64_t groups_total,
                                   int64_t nchunk, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  const int64_t nw = static_cast<int64_t>(gridDim.x) * wpb;
  for (int64_t bg = static_cast<int64_t>(blockIdx.x) * wpb + (threadIdx.x >> 5); bg < groups_total; bg += nw) {
    WelfordState st{0.f, 0.f, 0.f};
    for (int64_t k = lane; k < nchunk; k += 32) st = welford_merge(st, part[bg * nchunk + k]);
    st = warp_welford(st);
    if (lane == 0) {
      const float var = st.n > 0.f ? fmaxf(st.m2 / st.n, 0.f) : 0.f;
      stats[bg] = make_float2(st.mean, rsqrtf(var + eps));
    }
  }
}

template <class T>
__device__ __forceinline__ float gn_value(float v, int64_t b, int64_t c, int64_t Cg, int64_t G,
                                          const float2* __restrict__ stats, const T* __restrict__ w,
                                          const T* __restrict__ bias, bool silu) {
  const float2 ms = stats[b * G + c / Cg];
  float y = (v - ms.x) * ms.y;
  if (w) y *= Elem<T>::load(w, c);
  if (bias) y += Elem<T>::load(bias, c);
  return silu ? silu_d(y) : y;
}

// Elementwise apply over B x S x C; vec: C % V == 0 and x/out 16-byte aligned.
template <class T>
__global__ void gn_apply_kernel(const T* __restrict__ x, T* __restrict__ out, const float2* __restrict__ stats,
                                const T* __restrict__ w, const T* __restrict__ bias, int64_t n, int64_t SC, int64_t C,
                                int64_t G, bool silu, bool vec) {
  const int64_t Cg = C / G;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    constexpr int V = 16 / sizeof(T);
    using P = Pack<T, V>;
    const int64_t nv = n / V;
    for (int64_t i = tid; i < nv; i += stride) {
      const int64_t e = i * V;
      const int64_t b = e / SC, c0 = e % C;
      const P px = reinterpret_cast<const P*>(x)[i];
      P q;
#pragma unroll
      for (int j = 0; j < V; ++j)
        Elem<T>::store(q.v, j, gn_value<T>(Elem<T>::load(px.v, j), b, c0 + j, Cg, G, stats, w, bias, silu));
      reinterpret_cast<P*>(out)[i] = q;
    }
  } else {
    for (int64_t e = tid; e < n; e += stride) {
      const int64_t b = e / SC, c = e % C;
      Elem<T>::store(out, e, gn_value<T>(Elem<T>::load(x, e), b, c, Cg, G, stats, w, bias, silu));
    }
  }
}

void group_norm_cuda(const GroupNormArgs& a, const ExecCtx& ctx) {
  if (a.batch <= 0 || a.spatial <= 0 || a.channels <= 0) return;
  if (a.groups <= 0 || a.channels % a.groups != 0)
    throw DeviceError("CUDA kernel 'group_norm': groups must divide the channel count");
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  const int64_t B = a.batch, S = a.spatial, C = a.channels, G = a.groups;
  const int64_t N = S * (C / G);
  // ~8K values per partial, at most 1024 partials per group.
  int64_t nchunk = std::min<int64_t>(1024, std::max<int64_t>(1, (N + 8191) / 8192));
  const int64_t per_chunk = (N + nchunk - 1) / nchunk;
  nchunk = (N + per_chunk - 1) / per_chunk;
  const int64_t BG = B * G;
  const int64_t items = BG * nchunk;
  const size_t part_bytes = static_cast<size_t>(items) * sizeof(WelfordState);
  const size_t stats_off = (part_bytes + 255) / 256 * 256;
  std::shared_ptr<Storage> scratch = ctx.backend->allocate(stats_off + static_cast<size_t>(BG) * sizeof(float2));
  WelfordState* part = static_cast<WelfordState*>(scratch->ptr);
  float2* stats = reinterpret_cast<float2*>(static_cast<char*>(scratch->ptr) + stats_off);

  dispatch_float_t(a.dtype, "group_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(a.x);
    T* out = static_cast<T*>(a.out);
    gn_partial_kernel<T><<<grid_for(items, 1, 65535LL * 32), kStatThreads, 0, s>>>(x, part, S, C, G, nchunk,
                                                                                   per_chunk, items);
    TESSERA_CUDA_CHECK_LAUNCH("group_norm (statistics)");
    gn_finalize_kernel<<<grid_for(BG, 8), 256, 0, s>>>(part, stats, BG, nchunk, a.eps);
    TESSERA_CUDA_CHECK_LAUNCH("group_norm (merge)");
    const int64_t n = B * S * C;
    constexpr int V = 16 / sizeof(T);
    const bool vec = C % V == 0 && aligned_to(x, 16) && aligned_to(out, 16);
    constexpr int threads = 256;
    gn_apply_kernel<T><<<grid_for(vec ? n / V : n, threads), threads, 0, s>>>(
        x, out, stats, static_cast<const T*>(a.weight), static_cast<const T*>(a.bias), n, S * C, C, G, a.silu, vec);
    TESSERA_CUDA_CHECK_LAUNCH("group_norm");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "group_norm", GroupNormArgs, group_norm_cuda);

}  // namespace tessera

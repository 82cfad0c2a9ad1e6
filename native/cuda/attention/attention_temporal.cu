// Temporal-only attention for short groups (a token attends to the tokens at its own (h, w)
// site in every frame: F keys, F <= 32), as a memory-bound kernel on CUDA cores. The tiled
// tensor-core kernels pack several 21-token groups into one 128-row tile and pay per-tile
// masks and barriers for little math; here one block takes one (batch, site, head): it
// stages that site's F key and value rows in shared memory as fp32, then each warp takes
// queries in turn — lane j scores key j (F <= 32: one lane per key), the softmax runs over
// the lanes with shuffles, and each lane sums P V for its share of the head dim.
#include "attention_temporal.h"

#include <cmath>

#include "../common/dtype.cuh"
#include "../common/vec.cuh"
#include "../runtime/cuda_backend.h"

namespace tessera {
namespace {

constexpr int kMaxF = 32;       // one lane per key
constexpr int kMaxChunks = 8;   // head dim up to 256: 8 channels per lane
constexpr int kWarps = 4;
constexpr float kLog2e = 1.4426950408889634f;

struct TemporalParams {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  int F, sites, heads, dim;
  float scale_log2;
};

// Row `f` of (batch b, site s, head h): element offset of its first channel.
__device__ __forceinline__ int64_t row_offset(const TemporalParams& p, int b, int s, int h, int f) {
  return ((static_cast<int64_t>(b) * p.F + f) * p.sites + s) * static_cast<int64_t>(p.heads) * p.dim +
         static_cast<int64_t>(h) * p.dim;
}

template <class T>
__global__ void __launch_bounds__(kWarps * 32) attn_temporal_kernel(const TemporalParams p) {
  extern __shared__ float sm[];
  const int D = p.dim, F = p.F;
  const int ldk = D + 1;  // lane j reads row j of K along D: the odd stride keeps the lanes on different banks
  float* Ks = sm;                 // [F][D + 1]
  float* Vs = Ks + F * ldk;       // [F][D]
  float* Qs = Vs + F * D;         // [kWarps][D]
  const int h = blockIdx.x % p.heads;
  const int s = (blockIdx.x / p.heads) % p.sites;
  const int b = blockIdx.x / (p.heads * p.sites);
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  T* o = static_cast<T*>(p.o);

  for (int i = threadIdx.x; i < F * D; i += blockDim.x) {
    const int f = i / D, d = i - f * D;
    const int64_t off = row_offset(p, b, s, h, f) + d;
    Ks[f * ldk + d] = Elem<T>::load(k, off);
    Vs[f * D + d] = Elem<T>::load(v, off);
  }
  __syncthreads();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* qs = Qs + warp * D;
  for (int f = warp; f < F; f += kWarps) {
    const int64_t qoff = row_offset(p, b, s, h, f);
    for (int d = lane; d < D; d += 32) qs[d] = Elem<T>::load(q, qoff + d);
    __syncwarp();
    // Lane j: the logit of key j, in the log2 domain.
    float logit = -INFINITY;
    if (lane < F) {
      const float* kr = Ks + lane * ldk;
      float acc = 0.f;
      for (int d = 0; d < D; ++d) acc = fmaf(qs[d], kr[d], acc);
      logit = acc * p.scale_log2;
    }
    float m = logit;
#pragma unroll
    for (int w = 16; w > 0; w >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, w));
    const float e = lane < F ? exp2f(logit - m) : 0.f;
    float l = e;
#pragma unroll
    for (int w = 16; w > 0; w >>= 1) l += __shfl_xor_sync(0xffffffffu, l, w);
    const float pj = e / l;
    // O[d] = sum_j P[j] V[j][d], P broadcast from lane j; lane owns d = lane + 32 c.
    float acc[kMaxChunks];
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) acc[c] = 0.f;
    const int chunks = (D + 31) / 32;
    for (int j = 0; j < F; ++j) {
      const float pjj = __shfl_sync(0xffffffffu, pj, j);
      const float* vr = Vs + j * D + lane;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c)
        if (c < chunks && lane + 32 * c < D) acc[c] = fmaf(pjj, vr[32 * c], acc[c]);
    }
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c)
      if (c < chunks && lane + 32 * c < D) Elem<T>::store(o, qoff + lane + 32 * c, acc[c]);
    __syncwarp();  // qs is rewritten by the next query
  }
}

}  // namespace

bool attention_temporal(const AttentionArgs& a, const void* q, const void* k, cudaStream_t stream) {
  if (a.group != AttnGroup::Temporal || a.bias || a.key_lengths) return false;
  const int64_t F = a.grid[0], sites = a.grid[1] * a.grid[2];
  if (F < 1 || F > kMaxF || sites < 1 || F * sites != a.lq || a.lk != a.lq) return false;
  // RoPE must already be applied (the pre-pass does it for bf16 / f16).
  if (a.rope && q == a.q) return false;
  const int64_t blocks = a.batch * sites * a.heads;
  if (blocks > 0x7fffffffLL) return false;
  const size_t smem = (static_cast<size_t>(F) * (2 * a.head_dim + 1) + kWarps * a.head_dim) * sizeof(float);
  if (smem > 48 * 1024) return false;  // F = 32 at D = 176; Wan's 21 x 128 needs 22 KB

  TemporalParams p{};
  p.q = q;
  p.k = k;
  p.v = a.v;
  p.o = a.o;
  p.F = static_cast<int>(F);
  p.sites = static_cast<int>(sites);
  p.heads = static_cast<int>(a.heads);
  p.dim = static_cast<int>(a.head_dim);
  p.scale_log2 = a.scale * kLog2e;
  const unsigned grid = static_cast<unsigned>(blocks);
  switch (a.dtype) {
    case DType::BF16: attn_temporal_kernel<__nv_bfloat16><<<grid, kWarps * 32, smem, stream>>>(p); break;
    case DType::F16: attn_temporal_kernel<__half><<<grid, kWarps * 32, smem, stream>>>(p); break;
    case DType::F32: attn_temporal_kernel<float><<<grid, kWarps * 32, smem, stream>>>(p); break;
    default: return false;
  }
  TESSERA_CUDA_CHECK_LAUNCH("attention (temporal kernel)");
  return true;
}

}  // namespace tessera

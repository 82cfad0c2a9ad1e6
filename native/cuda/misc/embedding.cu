// CUDA "embedding" and "timestep_embedding".
// embedding: raw row copies (bit exact for every dtype) in the widest chunk that the
// row size and alignment allow; an id outside [0, vocab) writes a row of quiet NaN.
// timestep_embedding: the frequency table is computed on the host with the CPU's
// exact fp32 operations (std::log / std::exp) and passed by value, so the arguments
// t * freq_j are bit-identical to the CPU's; only cosf/sinf differ (by an ulp or two).
#include <cmath>
#include <cstring>
#include <limits>

#include "cuda/common/dispatch.cuh"
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/embed.h"

namespace tessera {
namespace {

// ---- embedding ----

template <class Ch>
__global__ void embedding_kernel(const int32_t* __restrict__ ids, const Ch* __restrict__ table,
                                 Ch* __restrict__ out, int64_t n, int64_t vocab, int64_t chunks, Ch nan_chunk) {
  const int64_t total = n * chunks;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / chunks, c = i - r * chunks;
    const int64_t id = ids[r];
    out[i] = (id >= 0 && id < vocab) ? table[id * chunks + c] : nan_chunk;
  }
}

// Quiet NaN of dtype d repeated over 16 bytes, as the host's store_from_f32(NaN) writes it.
void nan_pattern(DType d, unsigned char out[16]) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const size_t es = dtype_size(d);
  unsigned char one[4] = {0, 0, 0, 0};
  store_from_f32(one, d, 0, nan);
  for (size_t k = 0; k < 16; ++k) out[k] = one[k % es];
}

template <class Ch>
void launch_embedding(const EmbeddingArgs& p, int64_t row_bytes, const unsigned char* nanp, cudaStream_t stream) {
  const int64_t chunks = row_bytes / static_cast<int64_t>(sizeof(Ch));
  Ch nan_chunk;
  std::memcpy(&nan_chunk, nanp, sizeof(Ch));
  constexpr int threads = 256;
  embedding_kernel<Ch><<<grid_for(p.n * chunks, threads), threads, 0, stream>>>(
      p.ids, static_cast<const Ch*>(p.table), static_cast<Ch*>(p.out), p.n, p.vocab, chunks, nan_chunk);
  TESSERA_CUDA_CHECK_LAUNCH("embedding");
}

void embedding_cuda(const EmbeddingArgs& p, const ExecCtx& ctx) {
  if (p.n <= 0 || p.dim <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype));
  const int64_t row_bytes = p.dim * es;
  unsigned char nanp[16];
  nan_pattern(p.dtype, nanp);
  // The chunk must hold whole elements (so the NaN pattern lines up): at least es bytes.
  auto fits = [&](int64_t s) {
    return s >= es && row_bytes % s == 0 && aligned_to(p.table, s) && aligned_to(p.out, s);
  };
  if (fits(16)) launch_embedding<uint4>(p, row_bytes, nanp, stream);
  else if (fits(8)) launch_embedding<uint2>(p, row_bytes, nanp, stream);
  else if (fits(4)) launch_embedding<uint32_t>(p, row_bytes, nanp, stream);
  else if (fits(2)) launch_embedding<uint16_t>(p, row_bytes, nanp, stream);
  else launch_embedding<uint8_t>(p, row_bytes, nanp, stream);
}

// ---- timestep_embedding ----

// Half-dims whose table travels in the kernel parameters (kept under the classic
// 4 KB parameter limit); larger ones compute the table on the device.
constexpr int kMaxFreqByValue = 960;

struct FreqTable {
  float f[kMaxFreqByValue];
};

// out [n, dim]: for j < half, arg_j = t * freq_j goes to columns j and half + j.
template <class T, bool kTable>
__global__ void timestep_kernel(const float* __restrict__ t, T* __restrict__ out, int64_t n, int64_t half,
                                bool cos_first, float neg_log, float denom, const FreqTable tab) {
  const int64_t total = n * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / half, j = i - r * half;
    float freq;
    if (kTable) {
      freq = tab.f[j];
    } else {
      // The CPU's fp32 operations; exp in double, rounded (within an ulp of std::exp).
      const float e = __fdiv_rn(__fmul_rn(neg_log, static_cast<float>(j)), denom);
      freq = static_cast<float>(exp(static_cast<double>(e)));
    }
    const float arg = __fmul_rn(t[r], freq);
    T* o = out + r * 2 * half;
    Elem<T>::store(o, cos_first ? j : half + j, cosf(arg));
    Elem<T>::store(o, cos_first ? half + j : j, sinf(arg));
  }
}

void timestep_embedding_cuda(const TimestepEmbeddingArgs& p, const ExecCtx& ctx) {
  const int64_t half = p.dim / 2;
  if (p.n <= 0 || half <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  // Exactly the CPU's table (timestep_embedding_cpu in native/cpu/misc/lookup.cc).
  const float neg_log = -std::log(p.max_period);
  const float denom = static_cast<float>(half) - p.freq_shift;
  FreqTable tab;
  const bool by_value = half <= kMaxFreqByValue;
  if (by_value)
    for (int64_t j = 0; j < half; ++j) tab.f[j] = std::exp(neg_log * static_cast<float>(j) / denom);
  else
    std::memset(&tab, 0, sizeof(tab));
  dispatch_float_t(p.dtype, "timestep_embedding", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int threads = 256;
    const unsigned grid = grid_for(p.n * half, threads);
    T* out = static_cast<T*>(p.out);
    if (by_value)
      timestep_kernel<T, true><<<grid, threads, 0, stream>>>(p.t, out, p.n, half, p.cos_first, neg_log, denom, tab);
    else
      timestep_kernel<T, false><<<grid, threads, 0, stream>>>(p.t, out, p.n, half, p.cos_first, neg_log, denom, tab);
    TESSERA_CUDA_CHECK_LAUNCH("timestep_embedding");
  });
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "embedding", EmbeddingArgs, embedding_cuda);
TESSERA_REGISTER_KERNEL(cuda_kernels, "timestep_embedding", TimestepEmbeddingArgs, timestep_embedding_cuda);

}  // namespace tessera

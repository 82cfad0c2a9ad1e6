// CUDA "randn": element e = offset + i of the seed's stream is rng.h's gaussian_at(seed, e).
// One thread per Philox pair p = e / 2 computes both of the pair's values (the cos one
// for the even element and the sin one for the odd element) with rng.h's exact double
// expressions, so the floats match the CPU's bit for bit (up to the last-ulp agreement
// of the device's and glibc's double log/sin/cos, which after rounding to float almost
// never shows).
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/embed.h"
#include "tessera/rng.h"

namespace tessera {
namespace {

// Elements 2p and 2p + 1 of the stream (rng.h's gaussian_at for both parities).
__device__ __forceinline__ void gaussian_pair(uint64_t seed, uint64_t p, float& even, float& odd) {
  uint32_t r[4];
  philox4x32_10(p, seed, r);
  const double u1 = (static_cast<double>(r[0]) + 1.0) * 2.3283064365386963e-10;
  const double u2 = static_cast<double>(r[1]) * 2.3283064365386963e-10;
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586 * u2;
  even = static_cast<float>(radius * cos(angle));
  odd = static_cast<float>(radius * sin(angle));
}

__device__ __forceinline__ void store_out(void* out, DType d, int64_t i, float v) {
  switch (d) {
    case DType::F32: static_cast<float*>(out)[i] = v; break;
    case DType::BF16: static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(v); break;
    case DType::F16: static_cast<__half*>(out)[i] = __float2half_rn(v); break;
    // Not float dtypes, but store as the host's store_from_f32 would.
    case DType::I32: static_cast<int32_t*>(out)[i] = static_cast<int32_t>(v); break;
    case DType::U8:
      static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(v < 0.f ? 0.f : (v > 255.f ? 255.f : v));
      break;
  }
}

// Pairs cover elements [first_pair * 2, ...); element e maps to out[e - offset].
__global__ void randn_kernel(void* __restrict__ out, DType d, int64_t n, uint64_t seed, uint64_t offset) {
  const uint64_t first = offset >> 1;
  const uint64_t last = (offset + static_cast<uint64_t>(n) - 1) >> 1;
  const uint64_t npairs = last - first + 1;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t k = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < npairs; k += stride) {
    const uint64_t p = first + k;
    float even, odd;
    gaussian_pair(seed, p, even, odd);
    const uint64_t e0 = p * 2;
    if (e0 >= offset && e0 - offset < static_cast<uint64_t>(n)) store_out(out, d, static_cast<int64_t>(e0 - offset), even);
    const uint64_t e1 = e0 + 1;
    if (e1 >= offset && e1 - offset < static_cast<uint64_t>(n)) store_out(out, d, static_cast<int64_t>(e1 - offset), odd);
  }
}

void randn_cuda(const RandnArgs& p, const ExecCtx& ctx) {
  if (p.n <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  constexpr int threads = 256;
  const int64_t npairs = p.n / 2 + 2;
  randn_kernel<<<grid_for(npairs, threads), threads, 0, stream>>>(p.out, p.dtype, p.n, p.seed, p.offset);
  TESSERA_CUDA_CHECK_LAUNCH("randn");
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "randn", RandnArgs, randn_cuda);

}  // namespace tessera

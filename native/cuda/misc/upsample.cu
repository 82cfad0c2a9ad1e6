// CUDA "upsample_nearest": channels-last [B, F, H, W, C] -> [B, F*st, H*sh, W*sw, C],
// out[b, f, h, w, c] = x[b, f/st, h/sh, w/sw, c]. Pure data movement: each thread moves
// one chunk (up to 16 bytes) of a channel row, the widest chunk that the row size and
// both pointers' alignment allow (so any dtype works).
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/resample.h"

namespace tessera {
namespace {

template <class Ch>
__global__ void upsample_kernel(const Ch* __restrict__ x, Ch* __restrict__ out, int64_t n, int64_t chunks,
                                int64_t F, int64_t H, int64_t W, int64_t st, int64_t sh, int64_t sw) {
  const int64_t Fo = F * st, Ho = H * sh, Wo = W * sw;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t r = i / chunks;
    const int64_t c = i - r * chunks;
    const int64_t wo = r % Wo;
    r /= Wo;
    const int64_t ho = r % Ho;
    r /= Ho;
    const int64_t fo = r % Fo;
    const int64_t b = r / Fo;
    const int64_t src = (((b * F + fo / st) * H + ho / sh) * W + wo / sw) * chunks + c;
    out[i] = x[src];
  }
}

template <class Ch>
void launch(const UpsampleArgs& p, int64_t row_bytes, cudaStream_t stream) {
  const int64_t chunks = row_bytes / static_cast<int64_t>(sizeof(Ch));
  const int64_t n = p.batch * p.frames * p.st * p.height * p.sh * p.width * p.sw * chunks;
  constexpr int threads = 256;
  upsample_kernel<Ch><<<grid_for(n, threads), threads, 0, stream>>>(static_cast<const Ch*>(p.x),
                                                                    static_cast<Ch*>(p.out), n, chunks, p.frames,
                                                                    p.height, p.width, p.st, p.sh, p.sw);
  TESSERA_CUDA_CHECK_LAUNCH("upsample_nearest");
}

void upsample_cuda(const UpsampleArgs& p, const ExecCtx& ctx) {
  if (p.batch <= 0 || p.frames <= 0 || p.height <= 0 || p.width <= 0 || p.channels <= 0 || p.st <= 0 ||
      p.sh <= 0 || p.sw <= 0)
    return;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  const int64_t row_bytes = p.channels * static_cast<int64_t>(dtype_size(p.dtype));
  auto fits = [&](int64_t s) { return row_bytes % s == 0 && aligned_to(p.x, s) && aligned_to(p.out, s); };
  if (fits(16)) launch<uint4>(p, row_bytes, stream);
  else if (fits(8)) launch<uint2>(p, row_bytes, stream);
  else if (fits(4)) launch<uint32_t>(p, row_bytes, stream);
  else if (fits(2)) launch<uint16_t>(p, row_bytes, stream);
  else launch<uint8_t>(p, row_bytes, stream);
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "upsample_nearest", UpsampleArgs, upsample_cuda);

}  // namespace tessera

// CUDA "patch_embed3d" and "unpatchify3d".
// patch_embed3d is a conv3d with stride = kernel = patch and no padding, so it runs the
// implicit-GEMM engine (conv/conv_gemm.h): each block gathers a tile of patches straight
// from x into shared memory and multiplies it by the weight (tensor cores for bf16/f16),
// bias fused, out [B, L, D] written directly (token order f-h-w = the conv's output order).
// unpatchify3d is pure data movement: each thread moves one chunk (up to 16 bytes) of a
// patch pixel's C channels.
#include "cuda/common/dtype.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/conv/conv_gemm.h"
#include "cuda/runtime/cuda_backend.h"
#include "tessera/kernels/patch.h"

namespace tessera {
namespace {

void patch_embed_cuda(const PatchEmbedArgs& p, const ExecCtx& ctx) {
  if (p.pt <= 0 || p.ph <= 0 || p.pw <= 0) throw DeviceError("CUDA kernel 'patch_embed3d': patch sizes must be positive");
  const int64_t gf = p.frames / p.pt, gh = p.height / p.ph, gw = p.width / p.pw;
  if (p.batch <= 0 || gf <= 0 || gh <= 0 || gw <= 0 || p.dim <= 0) return;
  Conv3dArgs c;
  c.x = p.x;
  c.prev = nullptr;
  c.weight = p.weight;
  c.bias = p.bias;
  c.out = p.out;
  c.dtype = p.dtype;
  c.batch = p.batch;
  c.frames = p.frames;
  c.height = p.height;
  c.width = p.width;
  c.cin = p.channels;
  c.cout = p.dim;
  c.kt = p.pt;
  c.kh = p.ph;
  c.kw = p.pw;
  c.stride_t = p.pt;
  c.stride_h = p.ph;
  c.stride_w = p.pw;
  c.out_frames = gf;
  c.out_height = gh;
  c.out_width = gw;
  conv3d_gemm(c, ctx, "patch_embed3d");
}

// out [B, Fg*pt, Hg*ph, Wg*pw, C]; x [B, L, pt*ph*pw*C] with (pt, ph, pw, C) order.
// Chunks of Ch cover a pixel's C channels (row_chunks per pixel). Work item i walks
// out in order, so the writes are dense.
template <class Ch>
__global__ void unpatchify_kernel(const Ch* __restrict__ x, Ch* __restrict__ out, int64_t n, int64_t row_chunks,
                                  int64_t gf, int64_t gh, int64_t gw, int64_t pt, int64_t ph, int64_t pw) {
  const int64_t Fo = gf * pt, Ho = gh * ph, Wo = gw * pw;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t r = i / row_chunks;
    const int64_t c = i - r * row_chunks;
    const int64_t w = r % Wo;
    r /= Wo;
    const int64_t h = r % Ho;
    r /= Ho;
    const int64_t f = r % Fo;
    const int64_t b = r / Fo;
    const int64_t tf = f / pt, it = f - tf * pt;
    const int64_t th = h / ph, ih = h - th * ph;
    const int64_t tw = w / pw, iw = w - tw * pw;
    const int64_t token = (b * gf + tf) * gh * gw + th * gw + tw;
    const int64_t pix = (it * ph + ih) * pw + iw;
    out[i] = x[(token * pt * ph * pw + pix) * row_chunks + c];
  }
}

template <class Ch>
void launch_unpatchify(const UnpatchifyArgs& p, int64_t row_bytes, cudaStream_t s) {
  const int64_t row_chunks = row_bytes / static_cast<int64_t>(sizeof(Ch));
  const int64_t n = p.batch * p.gf * p.pt * p.gh * p.ph * p.gw * p.pw * row_chunks;
  constexpr int threads = 256;
  unpatchify_kernel<Ch><<<grid_for(n, threads), threads, 0, s>>>(static_cast<const Ch*>(p.x), static_cast<Ch*>(p.out),
                                                                 n, row_chunks, p.gf, p.gh, p.gw, p.pt, p.ph, p.pw);
  TESSERA_CUDA_CHECK_LAUNCH("unpatchify3d");
}

void unpatchify_cuda(const UnpatchifyArgs& p, const ExecCtx& ctx) {
  if (p.batch <= 0 || p.gf <= 0 || p.gh <= 0 || p.gw <= 0 || p.channels <= 0 || p.pt <= 0 || p.ph <= 0 ||
      p.pw <= 0)
    return;
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream);
  const int64_t row_bytes = p.channels * static_cast<int64_t>(dtype_size(p.dtype));
  auto fits = [&](int64_t b) { return row_bytes % b == 0 && aligned_to(p.x, b) && aligned_to(p.out, b); };
  if (fits(16)) launch_unpatchify<uint4>(p, row_bytes, s);
  else if (fits(8)) launch_unpatchify<uint2>(p, row_bytes, s);
  else if (fits(4)) launch_unpatchify<uint32_t>(p, row_bytes, s);
  else if (fits(2)) launch_unpatchify<uint16_t>(p, row_bytes, s);
  else launch_unpatchify<uint8_t>(p, row_bytes, s);
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "patch_embed3d", PatchEmbedArgs, patch_embed_cuda);
TESSERA_REGISTER_KERNEL(cuda_kernels, "unpatchify3d", UnpatchifyArgs, unpatchify_cuda);

}  // namespace tessera

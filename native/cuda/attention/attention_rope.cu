// The RoPE pre-pass (bf16 / f16; the attention op's path whenever rope is on): writes
// RoPE-rotated copies of Q and K (same [B, L, H, D] layout and dtype) so that the attention
// kernels run with rope off. Rotating once costs one memory-bound pass; rotating inside the
// attention kernel re-rotates each K tile in every query block that loads it (Lq / BR times
// per key).
#include <algorithm>

#include "cuda/attention/attention_kernels.h"
#include "cuda/common/dtype.cuh"
#include "cuda/gemm/mma.cuh"
#include "cuda/runtime/cuda_backend.h"

namespace tessera {
namespace attn {
namespace {

// Math, as the CPU reference's (angle in double, cos/sin as float): inverse frequency
// theta^(-2i/d_axis) in double, angle (coord + offset) * invf in double as a multiple of pi
// reduced to [-1, 1], then the single-precision sincospif (positions times low frequencies
// reach large angles, which fp32 alone would get wrong); (x0, x1) -> (x0 cos - x1 sin,
// x0 sin + x1 cos) in fp32, rounded to T. Channels past dt + dh + dw are copied unchanged.
// Grid: x = work chunks (grid-stride), y = tensor (0 = Q, 1 = K).
struct RopePrepass {
  const void* src[2];
  void* dst[2];
  int64_t rows[2];  // B * L * H rows of D elements
  int len[2];       // L (tokens) of each tensor
};

template <class T>
__global__ void __launch_bounds__(256) rope_prepass_kernel(RopePrepass rp, AttnParams p) {
  __shared__ double invf_d[128];
  __shared__ int pair_ax[128];
  const int D = p.dim;
  const int DH = (D + 1) / 2;  // channel pairs (the last one half-empty when D is odd)
  for (int i = threadIdx.x; i < DH; i += blockDim.x) {
    const int d = 2 * i;
    int ax, ia, dax;
    if (d < p.rope_d0) { ax = 0; ia = i; dax = p.rope_d0; }
    else if (d < p.rope_d0 + p.rope_d1) { ax = 1; ia = i - p.rope_d0 / 2; dax = p.rope_d1; }
    else if (d < p.rope_d0 + p.rope_d1 + p.rope_d2) { ax = 2; ia = i - (p.rope_d0 + p.rope_d1) / 2; dax = p.rope_d2; }
    else { ax = 3; ia = 0; dax = 1; }
    pair_ax[i] = ax;
    invf_d[i] = ax == 3 ? 0.0 : pow(static_cast<double>(p.rope_theta), -2.0 * ia / static_cast<double>(dax));
  }
  __syncthreads();
  const int which = blockIdx.y;
  const T* src = static_cast<const T*>(rp.src[which]);
  T* dst = static_cast<T*>(rp.dst[which]);
  const int64_t rows = rp.rows[which];
  const int L = rp.len[which];
  const int H = p.heads;
  // cos/sin of pair pr at coordinate coord of its axis.
  auto cossin = [&](int pr, const Coord& co, float* cs, float* sn) {
    const int ax = pair_ax[pr];
    const int coord = ax == 0 ? co.f : (ax == 1 ? co.h : co.w);
    const int off = ax == 0 ? p.rope_off0 : (ax == 1 ? p.rope_off1 : p.rope_off2);
    const double half_turns = static_cast<double>(coord + off) * invf_d[pr] * 0.3183098861837907;
    const float r = static_cast<float>(half_turns - 2.0 * rint(0.5 * half_turns));
    sincospif(r, sn, cs);
  };
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  if (p.vec) {  // D % 8 == 0, 16-byte aligned: one 8-channel chunk (4 pairs) per step
    const int CH = D / 8;
    const int64_t n = rows * CH;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
      const int64_t row = idx / CH;
      const int d0 = static_cast<int>(idx - row * CH) * 8;
      const int tok = static_cast<int>((row / H) % L);
      const Coord co = token_coord(p, tok);
      const uint4 v = *reinterpret_cast<const uint4*>(src + row * D + d0);
      uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int pr = d0 / 2 + e;
        if (pair_ax[pr] == 3) continue;
        float cs, sn;
        cossin(pr, co, &cs, &sn);
        const float2 x = tc::unpack2<T>(w[e]);
        w[e] = tc::pack2<T>(x.x * cs - x.y * sn, x.x * sn + x.y * cs);
      }
      store_words(dst + row * D + d0, w);
    }
  } else {  // one channel pair per step, 16-bit accesses
    const int64_t n = rows * DH;
    const uint16_t* s16 = reinterpret_cast<const uint16_t*>(src);
    uint16_t* d16 = reinterpret_cast<uint16_t*>(dst);
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
      const int64_t row = idx / DH;
      const int pr = static_cast<int>(idx - row * DH);
      const int d = 2 * pr;
      const int64_t e0 = row * D + d;
      const bool two = d + 1 < D;
      uint16_t lo = s16[e0];
      uint16_t hi = two ? s16[e0 + 1] : static_cast<uint16_t>(0);
      if (pair_ax[pr] != 3) {
        const int tok = static_cast<int>((row / H) % L);
        float cs, sn;
        cossin(pr, token_coord(p, tok), &cs, &sn);
        const float2 x = tc::unpack2<T>(static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16));
        const uint32_t y = tc::pack2<T>(x.x * cs - x.y * sn, x.x * sn + x.y * cs);
        lo = static_cast<uint16_t>(y & 0xffffu);
        hi = static_cast<uint16_t>(y >> 16);
      }
      d16[e0] = lo;
      if (two) d16[e0 + 1] = hi;
    }
  }
}

}  // namespace

RotatedQK rope_prepass(const AttentionArgs& a, const AttnParams& p, const ExecCtx& ctx) {
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  const int64_t row_elems = a.heads * a.head_dim;
  const size_t q_bytes = static_cast<size_t>(a.batch * a.lq * row_elems) * 2;
  const size_t k_bytes = static_cast<size_t>(a.batch * a.lk * row_elems) * 2;
  if (!ctx.backend) throw DeviceError("attention: RoPE pre-pass needs a backend for scratch memory");
  RotatedQK r;
  r.q = ctx.backend->allocate(q_bytes);
  if (k_bytes > 0) r.k = ctx.backend->allocate(k_bytes);
  RopePrepass rp{};
  rp.src[0] = a.q;
  rp.dst[0] = r.q->ptr;
  rp.rows[0] = a.batch * a.lq * a.heads;
  rp.len[0] = p.lq;
  rp.src[1] = a.k;
  rp.dst[1] = r.k ? r.k->ptr : nullptr;
  rp.rows[1] = r.k ? a.batch * a.lk * a.heads : 0;
  rp.len[1] = std::max(p.lk, 1);
  AttnParams pp = p;
  pp.vec = (a.head_dim % 8 == 0) && aligned16(a.q) && aligned16(a.k) && aligned16(r.q->ptr) &&
           (!r.k || aligned16(r.k->ptr));
  const int64_t max_rows = std::max(rp.rows[0], rp.rows[1]);
  const int64_t units = max_rows * (pp.vec ? a.head_dim / 8 : (a.head_dim + 1) / 2);
  const int64_t blocks = std::min<int64_t>((units + 255) / 256, 132 * 16);
  dim3 pgrid(static_cast<unsigned>(std::max<int64_t>(blocks, 1)), r.k ? 2u : 1u, 1u);
  if (a.dtype == DType::BF16) rope_prepass_kernel<__nv_bfloat16><<<pgrid, 256, 0, stream>>>(rp, pp);
  else rope_prepass_kernel<__half><<<pgrid, 256, 0, stream>>>(rp, pp);
  TESSERA_CUDA_CHECK_LAUNCH("attention (RoPE pre-pass)");
  return r;
}

}  // namespace attn
}  // namespace tessera

// CUDA kernel "attention" (semantics: tessera/kernels/attention.h): the planner and the
// dispatch. It checks the call, fills the parameter block (grouping, RoPE, masks) and the
// tile plan, then runs, in order:
//   - bf16 / f16 with RoPE: the RoPE pre-pass (attention_rope.cu), so that the attention
//     kernels below run with rope off on rotated copies of Q and K;
//   - bf16 / f16 on sm_90a devices: the wgmma kernel (attention_sm90.cu) for the cases it
//     covers;
//   - bf16 / f16 otherwise: the mma.sync tensor-core kernel (attention_mma.cu);
//   - f32: the SIMT kernel (attention_f32.cu).
// The kernel choice (runtime/kernel_choice.h) can keep bf16 / f16 off the wgmma kernel, pick
// its schedule and trace each call.
#include <algorithm>
#include <cstdio>
#include <string>

#include "cuda/attention/attention_kernels.h"
#include "cuda/attention/attention_sm90.h"
#include "cuda/runtime/cuda_backend.h"
#include "cuda/runtime/kernel_choice.h"
#include "tessera/kernels/attention.h"

namespace tessera {
namespace {

using namespace attn;

// Warps (of 16 query rows) per block of the mma.sync kernel for D <= 128 when each query
// sees more than 128 keys (measured faster than 4 on the H100).
constexpr int kWarpsSmallD = 8;

int checked_int(int64_t v, const char* what) {
  if (v < 0 || v > 0x7fffffffLL)
    throw DeviceError(std::string("attention: ") + what + " = " + std::to_string(v) + " is out of range for the CUDA kernel");
  return static_cast<int>(v);
}

// Fills the grouping fields; returns the number of query tiles.
int64_t plan_groups(const AttentionArgs& a, int br, AttnParams* p) {
  const int64_t F = a.grid[0], Hh = a.grid[1], W = a.grid[2];
  int64_t G, gsq, gsk, gstride, mstride;
  switch (a.group) {
    case AttnGroup::Full:
      G = 1; gsq = a.lq; gsk = a.lk; gstride = 0; mstride = 1;
      break;
    case AttnGroup::Spatial:
    case AttnGroup::Temporal: {
      if (F <= 0 || Hh <= 0 || W <= 0 || F * Hh * W != a.lq)
        throw DeviceError("attention: spatial/temporal grouping needs grid [F, H, W] with F*H*W == Lq (grid " +
                          std::to_string(F) + "x" + std::to_string(Hh) + "x" + std::to_string(W) + ", Lq " +
                          std::to_string(a.lq) + ")");
      const int64_t HW = Hh * W;
      if (a.group == AttnGroup::Spatial) { G = F; gsq = HW; gstride = HW; mstride = 1; }
      else { G = HW; gsq = F; gstride = 1; mstride = HW; }
      gsk = gsq;
      break;
    }
    default: throw DeviceError("attention: unknown token grouping");
  }
  p->groups = checked_int(G, "number of groups");
  p->gsq = checked_int(gsq, "group size");
  p->gsk = checked_int(gsk, "key group size");
  p->gstride = checked_int(gstride, "group stride");
  p->mstride = checked_int(mstride, "member stride");
  p->full = a.group == AttnGroup::Full;
  const int64_t per_tile = gsq <= br / 2 ? br / gsq : 1;
  const int64_t tpg = per_tile > 1 ? 1 : (gsq + br - 1) / br;
  p->per_tile = static_cast<int>(per_tile);
  p->tiles_per_group = checked_int(tpg, "tiles per group");
  const int64_t tiles = ((G + per_tile - 1) / per_tile) * tpg;
  return tiles;
}

// Warps per block of the mma.sync kernel (the tile plan depends on it): 8 (128 query rows)
// for D <= 128 when each query sees more than 128 keys, else 4 (64 rows).
int mma_warps(int64_t D, int64_t keys_per_query) {
  if (D > 128) return 4;
  return keys_per_query > 128 ? kWarpsSmallD : 4;
}

void attention_cuda(const AttentionArgs& a, const ExecCtx& ctx) {
  if (a.batch <= 0 || a.lq <= 0 || a.heads <= 0 || a.head_dim <= 0) return;
  if (a.head_dim > 256)
    throw DeviceError("attention: head_dim " + std::to_string(a.head_dim) +
                      " is not supported by the CUDA kernel (at most 256)");
  if (a.batch > 65535 || a.heads > 65535)
    throw DeviceError("attention: batch and heads must each be at most 65535 on CUDA");
  const bool half = a.dtype == DType::BF16 || a.dtype == DType::F16;
  if (!half && a.dtype != DType::F32)
    throw DeviceError(std::string("attention: CUDA kernel got dtype ") + dtype_name(a.dtype));

  AttnParams p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.o = a.o;
  p.lq = checked_int(a.lq, "Lq");
  p.lk = checked_int(a.lk, "Lk");
  p.heads = static_cast<int>(a.heads);
  p.dim = static_cast<int>(a.head_dim);
  p.scale_log2 = a.scale * kLog2e;
  // Token offsets (tok * heads * D) are 64-bit; token counts must fit in int.
  checked_int(a.lq * a.heads, "Lq * heads");
  checked_int(a.lk * a.heads, "Lk * heads");
  int64_t keys_per_query = a.lk;
  if (a.group == AttnGroup::Spatial) keys_per_query = a.grid[1] * a.grid[2];
  if (a.group == AttnGroup::Temporal) keys_per_query = a.grid[0];
  MmaPlan mma;
  mma.warps = mma_warps(a.head_dim, keys_per_query);
  const int br = half ? 16 * mma.warps : kF32Rows;
  const int64_t tiles = plan_groups(a, br, &p);
  if (tiles <= 0) return;
  if (tiles > 0x7fffffffLL) throw DeviceError("attention: too many query tiles");
  p.rope = a.rope ? 1 : 0;
  if (a.rope) {
    if (a.grid[0] <= 0 || a.grid[1] <= 0 || a.grid[2] <= 0)
      throw DeviceError("attention: rope needs a positive grid [F, H, W]");
    for (int i = 0; i < 3; ++i)
      if (a.rope_dims[i] < 0 || a.rope_dims[i] % 2 != 0)
        throw DeviceError("attention: rope dims must be even and non-negative");
    p.grid_h = checked_int(a.grid[1], "grid H");
    p.grid_w = checked_int(a.grid[2], "grid W");
    checked_int(a.grid[1] * a.grid[2], "grid H*W");
    p.rope_d0 = checked_int(a.rope_dims[0], "rope dim");
    p.rope_d1 = checked_int(a.rope_dims[1], "rope dim");
    p.rope_d2 = checked_int(a.rope_dims[2], "rope dim");
    p.rope_off0 = static_cast<int>(a.rope_offset[0]);
    p.rope_off1 = static_cast<int>(a.rope_offset[1]);
    p.rope_off2 = static_cast<int>(a.rope_offset[2]);
    p.rope_theta = a.rope_theta;
  }
  p.key_lengths = a.key_lengths;
  p.bias = a.bias;
  p.bias_batch_stride = a.bias_batch_stride;

  // One key/value buffer when no tile walks more than one key tile (64 keys): temporal
  // grouping over <= 64 frames, spatial over tiny frames, short key sets.
  const int64_t max_tile_keys = static_cast<int64_t>(std::min(p.per_tile, p.groups)) * p.gsk;
  mma.kv_buffers = mma.warps == 4 && a.head_dim <= 128 && max_tile_keys <= 64 ? 1 : 2;

  const CudaKernelChoice& choice = kernel_choice(ctx);
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream);
  // bf16/f16 + RoPE: rotate Q and K once into scratch copies (pre-pass), then run the
  // attention kernel with rope off on them. The scratch is held until after the launches below.
  RotatedQK rotated;
  if (half && a.rope) {
    rotated = rope_prepass(a, p, ctx);
    p.q = rotated.q->ptr;
    if (rotated.k) p.k = rotated.k->ptr;
    p.rope = 0;
  }
  p.vec = (a.head_dim % 8 == 0) && aligned16(p.q) && aligned16(p.k) && aligned16(a.v) && aligned16(a.o);

  // Hopper: the wgmma kernel (attention_sm90.cu) takes the cases it covers (bf16/f16, head
  // dim 64/128, no bias, full or spatial grouping) on sm_90a devices.
  if (half) {
    if (choice.attn_mma_only) {
      if (choice.attn_trace) std::fprintf(stderr, "[tessera] attention: mma.sync kernel (TESSERA_CUDA_ATTN=mma)\n");
    } else {
      WgmmaAttnPlan wg;
      wg.trace = choice.attn_trace;
      if (attention_sm90(a, p.q, p.k, wg, stream)) return;
    }
  }

  dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.heads), static_cast<unsigned>(a.batch));
  if (half) launch_mma(p, mma, a.dtype, grid, stream);
  else launch_f32(p, grid, stream);
}

}  // namespace

TESSERA_REGISTER_KERNEL(cuda_kernels, "attention", AttentionArgs, attention_cuda);

}  // namespace tessera

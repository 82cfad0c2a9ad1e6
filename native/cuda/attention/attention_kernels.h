// The attention kernels that attention.cu's planner dispatches to, besides the Hopper one
// (attention_sm90.h). Each takes the parameter block and the plan the planner made.
#pragma once
#include <cuda_runtime.h>

#include <memory>

#include "cuda/attention/attention_common.cuh"
#include "tessera/backend.h"
#include "tessera/kernels/attention.h"

namespace tessera {
namespace attn {

// The bf16 / f16 tensor-core kernel's block shape (attention_mma.cu).
struct MmaPlan {
  int warps = 4;       // 4 or 8, of 16 query rows each: the tile plan's rows per block
  int kv_buffers = 2;  // 1 when no tile walks more than one key tile (4 warps, head dim <= 128)
};

// bf16 / f16 attention on tensor cores (mma.sync), any head dim <= 256; grid = (query tiles
// of 16 * plan.warps rows, heads, batch).
void launch_mma(const AttnParams& p, const MmaPlan& plan, DType dtype, dim3 grid, cudaStream_t stream);

// Query rows per block of the fp32 kernel (attention_f32.cu).
constexpr int kF32Rows = 16;

// fp32 attention (SIMT, RoPE applied in the kernel), any head dim <= 256; grid = (query tiles
// of kF32Rows rows, heads, batch).
void launch_f32(const AttnParams& p, dim3 grid, cudaStream_t stream);

// RoPE-rotated copies of Q and K (attention_rope.cu), in scratch from ctx's backend: the
// attention kernels then run with rope off on them. Stream-ordered: hold them until the
// attention kernel that reads them has been launched.
struct RotatedQK {
  std::shared_ptr<Storage> q, k;  // k is null when Lk == 0
};
RotatedQK rope_prepass(const AttentionArgs& a, const AttnParams& p, const ExecCtx& ctx);

}  // namespace attn
}  // namespace tessera

// Host side of the Hopper attention kernel (attention_sm90.cuh): which cases it takes,
// the TMA tensor maps, the tile plan and the launch. Called from attention.cu's dispatch.
#include "attention_sm90.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "cuda/common/sm90_probe.h"
#include "cuda/common/tensor_map.h"
#include "attention_sm90.cuh"

namespace tessera {
namespace sm90 {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// [B, L, H, D] (contiguous, 16-byte aligned) as a 4-D tensor map (D, H, L, B) with boxes of
// `rows` tokens x 64 channels of one head, 128-byte swizzle; reads past L give zeros.
bool make_map(CUtensorMap* m, const void* ptr, DType dt, int64_t B, int64_t L, int64_t H, int64_t D, int rows) {
  auto fn = tensor_map_encoder();
  if (!fn) return false;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(D), static_cast<cuuint64_t>(H), static_cast<cuuint64_t>(L),
                              static_cast<cuuint64_t>(B)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(D * 2), static_cast<cuuint64_t>(H * D * 2),
                                 static_cast<cuuint64_t>(L * H * D * 2)};
  const cuuint32_t box[4] = {64, 1, static_cast<cuuint32_t>(rows), 1};
  const cuuint32_t estr[4] = {1, 1, 1, 1};
  std::memset(m, 0, sizeof(*m));
  const CUresult r = fn(m, dt == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
                        const_cast<void*>(ptr), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

}  // namespace
}  // namespace sm90

bool attention_sm90(const AttentionArgs& a, const void* q, const void* k, const WgmmaAttnPlan& plan,
                    cudaStream_t stream) {
  using namespace sm90;
  const bool trace = plan.trace;
  auto no = [&](const char* why) {
    if (trace) std::fprintf(stderr, "[tessera] attention: mma.sync kernel (%s)\n", why);
    return false;
  };
  if (a.dtype != DType::BF16 && a.dtype != DType::F16) return no("dtype");
  if (a.head_dim != 64 && a.head_dim != 128) return no("head dim not 64/128");
  if (a.bias) return no("bias");
  if (!(a.scale > 0.f) || !std::isfinite(a.scale * kLog2e)) return no("scale not positive and finite");
  if (a.batch <= 0 || a.lq <= 0 || a.lk <= 0 || a.heads <= 0) return no("empty");
  if (a.batch > 65535 || a.heads > 65535 || a.lq > 0x7fff0000LL || a.lk > 0x7fff0000LL) return no("size");
  if (!aligned16(q) || !aligned16(k) || !aligned16(a.v) || !aligned16(a.o)) return no("alignment");

  const int D = static_cast<int>(a.head_dim);
  const int ncwg = consumer_warpgroups(D);
  const int br = 64 * ncwg;

  // Tile plan: one group (full) or one per frame (spatial), members consecutive tokens.
  AttnParams p{};
  int64_t groups = 1;
  if (a.group == AttnGroup::Full) {
    p.gsq = static_cast<int>(a.lq);
    p.gsk = static_cast<int>(a.lk);
    p.gstride = 0;
  } else if (a.group == AttnGroup::Spatial) {
    const int64_t F = a.grid[0], HW = a.grid[1] * a.grid[2];
    if (F <= 0 || HW <= 0 || F * HW != a.lq) return no("grid");
    // Frames of at most 63 tokens: the mma.sync kernel packs several per tile.
    if (HW < 64) return no("small frames");
    groups = F;
    p.gsq = p.gsk = static_cast<int>(HW);
    p.gstride = static_cast<int>(HW);
  } else {
    return no("temporal grouping");  // strided members: the mma.sync kernel reads them in place
  }
  const int64_t tpg = (static_cast<int64_t>(p.gsq) + br - 1) / br;
  const int64_t tiles = groups * tpg;
  if (tiles <= 0 || tiles > 0x7fffffffLL) return no("tiles");
  p.tiles_per_group = static_cast<int>(tpg);
  p.o = a.o;
  p.lq = static_cast<int>(a.lq);
  p.lk = static_cast<int>(a.lk);
  p.heads = static_cast<int>(a.heads);
  p.scale_log2 = a.scale * kLog2e;
  p.key_lengths = a.key_lengths;

  if (!device_runs_sm90a()) return no("device does not run sm_90a code");
  Maps m;
  if (!make_map(&m.q, q, a.dtype, a.batch, a.lq, a.heads, D, 64) ||
      !make_map(&m.k, k, a.dtype, a.batch, a.lk, a.heads, D, kBC) ||
      !make_map(&m.v, a.v, a.dtype, a.batch, a.lk, a.heads, D, kBC))
    return no("tensor map");

  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.heads), static_cast<unsigned>(a.batch));
  if (a.dtype == DType::BF16) launch_wgmma_bf16(D, m, p, grid, stream);
  else launch_wgmma_f16(D, m, p, grid, stream);
  if (trace)
    std::fprintf(stderr, "[tessera] attention: wgmma kernel D=%d warpgroups=%d grid=%ux%ux%u\n", D, ncwg, grid.x,
                 grid.y, grid.z);
  return true;
}

}  // namespace tessera

// Host side shared by the two implicit-GEMM conv kernels (conv3d_igemm.cu: mma.sync;
// conv3d_wgmma.cu: Hopper wgmma): which cases they can take, their Params, the forced tile
// and the trace line. Defined in conv3d_igemm.cu.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "conv_igemm.cuh"
#include "tessera/kernels/conv.h"

namespace tessera {
namespace igemm {

// Why `a` (with prev_frames of prev in use) cannot run on an implicit-GEMM kernel whose
// k-step is `bk` and whose weight has `np` columns, or null when it can: bf16/f16, Cin % 8 == 0,
// at most kMaxTaps taps, 16-byte aligned x / prev, offsets that fit the kernels' 32-bit math.
const char* refusal(const Conv3dArgs& a, int64_t prev_frames, int bk, int64_t np);

// The kernels' Params for `a`, with weight `w` of `np` columns (tiles_n is the launcher's).
Params make_params(const Conv3dArgs& a, int64_t prev_frames, const void* w, int64_t np);

// `bn`, or the plan's forced tile width when it is one of `tiles`.
int forced_tile(int bn, int forced, std::initializer_list<int> tiles);

// The trace line of a launch: kernel name, tile, GEMM and conv shape.
void trace_launch(const char* name, const char* kernel, int bn, const Params& p);

}  // namespace igemm
}  // namespace tessera

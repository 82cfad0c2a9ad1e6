// The channels-last implicit-GEMM convolution engine behind "conv3d" and "patch_embed3d"
// (a patch embedding is a conv3d with stride = kernel and no padding).
//   out[m, n] = bias[n] + sum_k A[m, k] * Wt[n, k]
// m walks the output positions (b, fo, ho, wo), n the output channels, and k the taps
// (it, ih, iw) with the input channel fastest, so an A row segment is a contiguous run
// of a channels-last input pixel. The weight (PyTorch [Cout, Cin, kt, kh, kw]) is
// reordered once per call into that k order in a scratch block. A tiles are gathered
// from x (or from the `prev` frames that stand in for the last prev_frames of the front
// time padding) straight into shared memory; padding is zero-filled. bf16/f16 run on
// tensor cores (wmma, fp32 accumulation) with cp.async double buffering; f32 runs a
// SIMT tile. Defined in conv3d.cu.
#pragma once
#include <cstdint>

#include "tessera/backend.h"
#include "tessera/kernels/conv.h"

namespace tessera {

// Runs Conv3dArgs on ctx's stream; `name` labels launch errors.
void conv3d_gemm(const Conv3dArgs& a, const ExecCtx& ctx, const char* name);

}  // namespace tessera

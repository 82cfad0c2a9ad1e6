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
#include <memory>

#include "tessera/backend.h"
#include "tessera/kernels/conv.h"
#include "cuda/runtime/kernel_choice.h"

namespace tessera {

// Runs Conv3dArgs on ctx's stream; `name` labels launch errors. It tries, in order, the
// narrow-output kernel, the Hopper wgmma kernel (unless the kernel choice skips it), the
// mma.sync implicit-GEMM kernel, then runs the wmma / SIMT kernels in conv3d.cu.
void conv3d_gemm(const Conv3dArgs& a, const ExecCtx& ctx, const char* name);

// What conv3d_gemm hands each conv kernel from the kernel choice (cuda/runtime/kernel_choice.h).
struct ConvPlan {
  int tile_n = 0;                                   // 128 x tile_n block tile where a kernel has it; 0: its own pick
  ConvPipeline pipeline = ConvPipeline::Auto;       // the wgmma kernel's pipeline
  bool ws_tma_weight = true;                        // the ws kernel loads weight tiles by TMA
  bool trace = false;                               // stderr line per call: path, tile, refusals
};

// The mma.sync implicit-GEMM kernel (conv3d_igemm.cu, design in NOTES.md) for bf16/f16 with
// Cin % 8 == 0, at most 32 taps and 16-byte aligned x / prev. `a` has been checked by
// conv3d_gemm, and prev_frames is the number of prev frames in use. Returns false, having
// launched nothing, for a case it does not cover (the older kernels run it then).
bool conv3d_igemm(const Conv3dArgs& a, int64_t prev_frames, const ConvPlan& plan, const ExecCtx& ctx,
                  const char* name);

// The Hopper kernels (conv3d_wgmma.cu, sm_90a devices): the same implicit GEMM with wgmma
// from shared memory; the same contract.
bool conv3d_wgmma(const Conv3dArgs& a, int64_t prev_frames, const ConvPlan& plan, const ExecCtx& ctx,
                  const char* name);

// Few output channels (Cout <= 8, the VAE's RGB head), bf16 / f16, stride 1, Cin % 32 == 0,
// kh and kw <= 3 (conv3d_narrow.cu): a direct tensor-core kernel over shared-memory halo tiles.
// The same contract.
bool conv3d_narrow(const Conv3dArgs& a, int64_t prev_frames, const ConvPlan& plan, const ExecCtx& ctx,
                   const char* name);

// The weight [Cout][Cin][taps] reordered to [Cout][taps * Cin] (k order) in a scratch block
// on ctx's stream; null for a 1-tap kernel, whose weight already is in k order.
std::shared_ptr<Storage> weight_nk(const Conv3dArgs& a, const ExecCtx& ctx, const char* name);

}  // namespace tessera

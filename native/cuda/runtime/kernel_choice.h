// The CUDA backend's kernel choice: every TESSERA_CUDA_* environment switch, read once when
// a device's backend starts (read_kernel_choice) and carried to the kernels in
// ExecCtx::cuda_choice. Dispatchers turn it into the plan each kernel takes as an argument;
// no kernel file reads the environment. With none set, every op takes its default path.
//
// | switch                   | values                  | default  | what it does                                        | kind     |
// |--------------------------|-------------------------|----------|-----------------------------------------------------|----------|
// | TESSERA_CUDA_ATTN        | mma, wgmma              | wgmma    | mma: bf16/f16 attention never takes the Hopper      | choice   |
// |                          |                         |          | wgmma kernel (the sm_80 path, checked on a Hopper)  |          |
// | TESSERA_CUDA_ATTN_TRACE  | 1                       | off      | stderr line per bf16/f16 attention call: the kernel | trace    |
// |                          |                         |          | it took, or why not the wgmma one                   |          |
// | TESSERA_CUDA_NO_CUBLASLT | 1                       | off      | matmul skips cuBLASLt: our tensor-core / f32 GEMM   | choice   |
// |                          |                         |          | (the path of a build without cuBLASLt)              |          |
// | TESSERA_CUDA_GEMM_TRACE  | 1                       | off      | stderr line per matmul call: the path it took       | trace    |
// | TESSERA_CUDA_CONV        | igemm                   | (auto)   | conv skips the Hopper wgmma kernels: the mma.sync   | choice   |
// |                          |                         |          | implicit GEMM (the sm_80 path, checked on a Hopper) |          |
// | TESSERA_CUDA_CONV_TILE   | 128x192, 128x128,       | (auto)   | forces the block tile of the implicit-GEMM conv     | coverage |
// |                          | 128x96, 128x64          |          | kernels where they have it (small check shapes      |          |
// |                          |                         |          | alone never reach the wide tiles)                   |          |
// | TESSERA_CUDA_CONV_WGMMA  | ws, s4d2, s3d2          | (auto)   | forces the wgmma conv pipeline (ws needs an even    | coverage |
// |                          |                         |          | Cout; small check shapes never reach ws or s4d2)    |          |
// | TESSERA_CUDA_CONV_WS_TMA | 0                       | 1        | 0: the ws conv kernel loads its weight tiles by     | coverage |
// |                          |                         |          | cp.async (its path on a driver without the TMA      |          |
// |                          |                         |          | encoder) instead of TMA                             |          |
// | TESSERA_CUDA_CONV_TRACE  | 1                       | off      | stderr line per conv3d / conv2d / patch_embed3d     | trace    |
// |                          |                         |          | call: kernel, tile, GEMM shape, and refusals        |          |
//
// Kinds: a *choice* selects a path that is the default elsewhere (another device or build), so
// it can be checked and timed on this one; *coverage* forces a path the planner takes for large
// shapes only, so that the conformance suite reaches it; a *trace* only prints. No switch
// re-runs a configuration that measured slower: those are deleted with their code, and what
// they measured is in docs/performance.md. Flags are on when set to anything but "" or "0"; a
// value outside the list is reported on stderr when the backend starts and ignored. Build-time
// variables (TESSERA_CUDA_ARCHS, TESSERA_NO_CUDA, TESSERA_NO_CUBLASLT, TESSERA_NO_NCCL) are
// CMake's.
#pragma once
#include "tessera/backend.h"

namespace tessera {

enum class ConvPipeline { Auto, S3d2, S4d2, Ws };

struct CudaKernelChoice {
  // attention
  bool attn_mma_only = false;                      // TESSERA_CUDA_ATTN=mma
  bool attn_trace = false;                         // TESSERA_CUDA_ATTN_TRACE
  // matmul
  bool cublaslt = true;  // !TESSERA_CUDA_NO_CUBLASLT
  bool gemm_trace = false;
  // conv3d / conv2d / patch_embed3d
  bool conv_no_wgmma = false;                      // TESSERA_CUDA_CONV=igemm
  int conv_tile_n = 0;                             // TESSERA_CUDA_CONV_TILE=128xN (0: the kernel's own)
  ConvPipeline conv_pipeline = ConvPipeline::Auto;  // TESSERA_CUDA_CONV_WGMMA
  bool conv_ws_tma = true;                         // TESSERA_CUDA_CONV_WS_TMA
  bool conv_trace = false;                         // TESSERA_CUDA_CONV_TRACE
};

// The switches of the process environment now (unset ones at their defaults).
CudaKernelChoice read_kernel_choice();

// The choice a kernel runs with: ctx's, or the defaults when ctx carries none.
const CudaKernelChoice& kernel_choice(const ExecCtx& ctx);

}  // namespace tessera

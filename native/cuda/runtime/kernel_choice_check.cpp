// Prints the kernel choice that read_kernel_choice() makes of this process's environment, one
// `field=value` per line: packages/native/src/kernel-choice.test.ts builds it with the host
// compiler (no CUDA needed) and runs it under different TESSERA_CUDA_* settings. Not part of
// the library build (CMake takes *.cc and *.cu only).
#include <cstdio>

#include "cuda/runtime/kernel_choice.h"

int main() {
  const tessera::CudaKernelChoice c = tessera::read_kernel_choice();
  std::printf("attn_mma_only=%d\n", c.attn_mma_only ? 1 : 0);
  std::printf("attn_trace=%d\n", c.attn_trace ? 1 : 0);
  std::printf("cublaslt=%d\n", c.cublaslt ? 1 : 0);
  std::printf("gemm_trace=%d\n", c.gemm_trace ? 1 : 0);
  std::printf("conv_no_wgmma=%d\n", c.conv_no_wgmma ? 1 : 0);
  std::printf("conv_tile_n=%d\n", c.conv_tile_n);
  std::printf("conv_pipeline=%d\n", static_cast<int>(c.conv_pipeline));
  std::printf("conv_ws_tma=%d\n", c.conv_ws_tma ? 1 : 0);
  std::printf("conv_trace=%d\n", c.conv_trace ? 1 : 0);
  return 0;
}

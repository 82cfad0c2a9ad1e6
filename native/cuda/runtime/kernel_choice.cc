#include "cuda/runtime/kernel_choice.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

namespace tessera {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

bool flag(const char* name) {
  const char* v = env(name);
  return v && std::strcmp(v, "0") != 0;
}

void ignored(const char* name, const char* value, const char* expected) {
  std::fprintf(stderr, "[tessera] %s=%s is not one of %s; ignored (unset it for the default)\n", name, value,
               expected);
}

// The index in `names` of the switch's value, or -1 (unset or not listed; the latter reported).
int pick(const char* name, std::initializer_list<const char*> names, const char* expected) {
  const char* v = env(name);
  if (!v) return -1;
  int i = 0;
  for (const char* n : names) {
    if (std::strcmp(v, n) == 0) return i;
    ++i;
  }
  ignored(name, v, expected);
  return -1;
}

}  // namespace

CudaKernelChoice read_kernel_choice() {
  CudaKernelChoice c;
  c.attn_mma_only = pick("TESSERA_CUDA_ATTN", {"mma", "wgmma"}, "mma, wgmma") == 0;
  c.attn_trace = flag("TESSERA_CUDA_ATTN_TRACE");

  c.cublaslt = !flag("TESSERA_CUDA_NO_CUBLASLT");
  c.gemm_trace = flag("TESSERA_CUDA_GEMM_TRACE");

  c.conv_no_wgmma = pick("TESSERA_CUDA_CONV", {"igemm"}, "igemm") == 0;
  static const int tiles[] = {192, 128, 96, 64};
  const int t = pick("TESSERA_CUDA_CONV_TILE", {"128x192", "128x128", "128x96", "128x64"},
                     "128x192, 128x128, 128x96, 128x64");
  if (t >= 0) c.conv_tile_n = tiles[t];
  switch (pick("TESSERA_CUDA_CONV_WGMMA", {"s3d2", "s4d2", "ws"}, "ws, s4d2, s3d2")) {
    case 0: c.conv_pipeline = ConvPipeline::S3d2; break;
    case 1: c.conv_pipeline = ConvPipeline::S4d2; break;
    case 2: c.conv_pipeline = ConvPipeline::Ws; break;
    default: break;
  }
  if (const char* v = env("TESSERA_CUDA_CONV_WS_TMA")) c.conv_ws_tma = std::strcmp(v, "0") != 0;
  c.conv_trace = flag("TESSERA_CUDA_CONV_TRACE");
  return c;
}

const CudaKernelChoice& kernel_choice(const ExecCtx& ctx) {
  static const CudaKernelChoice defaults;
  return ctx.cuda_choice ? *ctx.cuda_choice : defaults;
}

}  // namespace tessera

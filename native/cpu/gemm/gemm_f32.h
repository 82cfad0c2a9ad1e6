// The CPU's one f32 GEMM engine, shared by matmul, conv3d and patch_embed3d.
//
// BLIS-style: C is cut into one region per task; inside a region, B is packed in
// KC x NC blocks (kept in L2) of kGemmNR-wide column panels, and A in kGemmMR x KC
// row panels (kept in L1), so the micro-kernel streams both operands from
// contiguous aligned memory whatever the source layout. Callers describe A and B
// only through packing callbacks: a plain matrix, its transpose, or an implicit
// im2col view of a convolution input all feed the same micro-kernel.
#pragma once
#include <cstdint>

#include "tessera/kernels/gemm.h"

namespace tessera {

class ThreadPool;

// Register tile of the micro-kernel (rows of C x columns of C). Wider tiles
// amortise the broadcasts of A over more FMAs; the width is a whole number of
// vectors of the widest ISA the build targets.
#if defined(__AVX512F__)
constexpr int kGemmMR = 12;
constexpr int kGemmNR = 32;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kGemmMR = 6;
constexpr int kGemmNR = 16;
#else
constexpr int kGemmMR = 4;
constexpr int kGemmNR = 8;
#endif

// Depth of one packed block: packers never get kc above this.
constexpr int64_t kGemmKC = 256;

// Writes A[i0 + r, k0 + kk] to dst[kk * kGemmMR + r] for r < rows, kk < kc.
// Rows rows..kGemmMR-1 of dst are already zero.
using GemmPackA = void (*)(const void* ctx, int64_t batch, int64_t i0, int64_t rows, int64_t k0, int64_t kc,
                           float* dst);
// Writes B[k0 + kk, j0 + c] to dst[kk * kGemmNR + c] for c < cols, kk < kc.
// Columns cols..kGemmNR-1 of dst are already zero.
using GemmPackB = void (*)(const void* ctx, int64_t batch, int64_t j0, int64_t cols, int64_t k0, int64_t kc,
                           float* dst);

// C[b][i, j] = act(alpha * sum_k A[b][i, k] * B[b][k, j] + bias[j]) for b < batch.
struct GemmDesc {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  GemmPackA pack_a = nullptr;
  GemmPackB pack_b = nullptr;
  const void* ctx = nullptr;
  float* c = nullptr;
  int64_t ldc = 0;       // elements between rows of C
  int64_t stride_c = 0;  // elements between batches of C
  float alpha = 1.f;
  const float* bias = nullptr;  // [n] or null
  Epilogue epilogue = Epilogue::None;
};

// Runs on `pool` (or inline when null or the problem is small).
void gemm_f32(const GemmDesc& d, ThreadPool* pool);

// In-place activation over n contiguous floats (vectorised where the ISA allows).
void apply_epilogue_f32(float* x, int64_t n, Epilogue epi);

}  // namespace tessera

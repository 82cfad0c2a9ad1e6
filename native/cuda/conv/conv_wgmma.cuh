// What the two Hopper conv kernels (conv3d_wgmma.cu: every thread copies and computes;
// conv3d_wgmma_ws.cu: a producer warpgroup copies, two consumer warpgroups compute) share:
// the 128 x BK = 64 block tile of A and the 128-byte swizzled layout of a shared-memory tile
// that one wgmma descriptor per operand and k-step of 16 reads.
#pragma once
#include <cstdint>

#include "cuda/gemm/mma.cuh"
#include "conv_igemm.cuh"

namespace tessera {
namespace wgconv {

constexpr int kBM = 128;  // two consumer warpgroups of 64 rows (wgmma m64)
constexpr int kBK = 64;   // one 128-byte swizzle row of 16-bit elements

// Swizzled byte offset of 16-byte chunk c of row r in a tile of 128-byte rows: chunk c of
// row r lives at c ^ (r % 8), which is how wgmma reads a 128-byte-swizzled K-major operand.
__host__ __device__ __forceinline__ uint32_t swz(int r, int c) {
  return static_cast<uint32_t>(r) * 128u + (static_cast<uint32_t>(c ^ (r & 7)) << 4);
}

#if defined(__CUDACC__)
// One k-step of A into a swizzled [kBM][64] tile at sa: this thread's 16-byte chunk column a_kc
// of rows a_r0 + RSTEP * i (i < IT), gathered from x / prev at the cursor's tap, zero for
// padding and rows past M.
template <class T, int IT, int RSTEP>
__device__ __forceinline__ void copy_a_chunks(unsigned char* sa, const igemm::Params& p, const igemm::Row (&rows)[IT],
                                              const igemm::TapCursor& cur, int a_r0, int a_kc) {
  const T* xp = static_cast<const T*>(p.x);
  const T* pp = static_cast<const T*>(p.prev);
#pragma unroll
  for (int i = 0; i < IT; ++i) {
    bool from_prev = false;
    int64_t off = 0;
    const bool ok = igemm::chunk_source(p, rows[i], cur, &from_prev, &off);
    tc::cp_async16(sa + swz(a_r0 + RSTEP * i, a_kc), ok ? (from_prev ? pp : xp) + off : xp, ok ? 16 : 0);
  }
}

// One k-step of B into a swizzled [BN][64] tile at sb: rows n0.. of the [N][K] weight from k0,
// zero past N / K; NTH threads share its BN * 8 chunks (chunk tid + NTH * j).
template <class T, int BN, int NTH>
__device__ __forceinline__ void copy_weight_tile(unsigned char* sb, const igemm::Params& p, int n0, int k0, int tid) {
  static_assert(BN * 8 % NTH == 0, "B loader");
  const T* wp = static_cast<const T*>(p.w);
#pragma unroll
  for (int j = 0; j < BN * 8 / NTH; ++j) {
    const int c = tid + j * NTH;
    const int r = c >> 3, kc = c & 7;
    const int n = n0 + r, k = k0 + kc * 8;
    const bool ok = n < p.N && k < p.K;
    tc::cp_async16(sb + swz(r, kc), ok ? wp + static_cast<int64_t>(n) * p.K + k : wp, ok ? 16 : 0);
  }
}
#endif

}  // namespace wgconv
}  // namespace tessera

// What the two Hopper conv kernels (conv3d_wgmma.cu: every thread copies and computes;
// conv3d_wgmma_ws.cu: a producer warpgroup copies, two consumer warpgroups compute) share:
// the 128 x BK = 64 block tile of A and the 128-byte swizzled layout of a shared-memory tile
// that one wgmma descriptor per operand and k-step of 16 reads.
#pragma once
#include <cstdint>

namespace tessera {
namespace wgconv {

constexpr int kBM = 128;  // two consumer warpgroups of 64 rows (wgmma m64)
constexpr int kBK = 64;   // one 128-byte swizzle row of 16-bit elements

// Swizzled byte offset of 16-byte chunk c of row r in a tile of 128-byte rows: chunk c of
// row r lives at c ^ (r % 8), which is how wgmma reads a 128-byte-swizzled K-major operand.
__host__ __device__ __forceinline__ uint32_t swz(int r, int c) {
  return static_cast<uint32_t>(r) * 128u + (static_cast<uint32_t>(c ^ (r & 7)) << 4);
}

}  // namespace wgconv
}  // namespace tessera

// Counter-based Gaussian RNG shared verbatim by the CPU and CUDA backends, so a seed
// gives the same noise on either device (the same video on a laptop and on a GPU).
//
// Element e of the stream (e = offset + i) is built from pair p = e / 2:
//   (r0, r1, r2, r3) = Philox4x32-10(counter = (p lo, p hi, 0, 0), key = (seed lo, seed hi))
//   u1 = (r0 + 1) * 2^-32 in (0, 1],  u2 = r1 * 2^-32 in [0, 1)
//   radius = sqrt(-2 ln u1), angle = 2 pi u2   (computed in double)
//   e even -> radius * cos(angle), e odd -> radius * sin(angle), rounded to float.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TESSERA_HD __host__ __device__ __forceinline__
#else
#define TESSERA_HD inline
#endif

namespace tessera {

TESSERA_HD void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
  const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  const uint32_t n0 = hi1 ^ c1 ^ k0;
  const uint32_t n2 = hi0 ^ c3 ^ k1;
  c0 = n0;
  c1 = lo1;
  c2 = n2;
  c3 = lo0;
}

TESSERA_HD void philox4x32_10(uint64_t counter, uint64_t seed, uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    philox_round(c0, c1, c2, c3, k0, k1);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

TESSERA_HD float gaussian_at(uint64_t seed, uint64_t e) {
  uint32_t r[4];
  philox4x32_10(e >> 1, seed, r);
  const double u1 = (static_cast<double>(r[0]) + 1.0) * 2.3283064365386963e-10;
  const double u2 = static_cast<double>(r[1]) * 2.3283064365386963e-10;
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586 * u2;
  return static_cast<float>((e & 1) ? radius * sin(angle) : radius * cos(angle));
}

}  // namespace tessera

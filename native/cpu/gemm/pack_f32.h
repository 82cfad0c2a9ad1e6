// Packing helpers for GEMM panels (see gemm_f32.h for the panel layout).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX__) || defined(__SSE__)
#include <immintrin.h>
#endif

namespace tessera {

// dst[kk * Width + c] = src[kk * ld + c] for kk < kc, c < count: the source already
// runs along the panel's contiguous direction, so each step is one short copy
// (of a compile-time length in the common full-panel case).
template <int64_t Width>
inline void pack_rows_contiguous(const float* src, int64_t ld, int64_t kc, int64_t count, float* dst) {
  if (count == Width) {
    for (int64_t kk = 0; kk < kc; ++kk)
      for (int64_t c = 0; c < Width; ++c) dst[kk * Width + c] = src[kk * ld + c];
    return;
  }
  for (int64_t kk = 0; kk < kc; ++kk)
    std::memcpy(dst + kk * Width, src + kk * ld, sizeof(float) * static_cast<size_t>(count));
}

// dst[kk * width + r] = rows[r][kk] for r < count, kk < len: a transpose, done in
// 8x8 / 4x4 register blocks because a scalar transpose's strided stores cost more
// than the multiply-adds they feed. Rows are separate pointers so that an implicit
// im2col (one source pixel per row) packs the same way as a strided matrix.
inline void pack_transpose_rows(const float* const* rows, int64_t count, int64_t len, int64_t width, float* dst) {
  int64_t r = 0;
#if defined(__AVX__)
  for (; r + 8 <= count; r += 8) {
    const float* const* s = rows + r;
    float* d = dst + r;
    int64_t kk = 0;
    for (; kk + 8 <= len; kk += 8) {
      const __m256 r0 = _mm256_loadu_ps(s[0] + kk), r1 = _mm256_loadu_ps(s[1] + kk);
      const __m256 r2 = _mm256_loadu_ps(s[2] + kk), r3 = _mm256_loadu_ps(s[3] + kk);
      const __m256 r4 = _mm256_loadu_ps(s[4] + kk), r5 = _mm256_loadu_ps(s[5] + kk);
      const __m256 r6 = _mm256_loadu_ps(s[6] + kk), r7 = _mm256_loadu_ps(s[7] + kk);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
      float* o = d + kk * width;
      _mm256_storeu_ps(o + 0 * width, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(o + 1 * width, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(o + 2 * width, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(o + 3 * width, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(o + 4 * width, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(o + 5 * width, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(o + 6 * width, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(o + 7 * width, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; kk < len; ++kk)
      for (int64_t i = 0; i < 8; ++i) d[kk * width + i] = s[i][kk];
  }
#endif
#if defined(__SSE__)
  for (; r + 4 <= count; r += 4) {
    const float* const* s = rows + r;
    float* d = dst + r;
    int64_t kk = 0;
    for (; kk + 4 <= len; kk += 4) {
      __m128 r0 = _mm_loadu_ps(s[0] + kk), r1 = _mm_loadu_ps(s[1] + kk);
      __m128 r2 = _mm_loadu_ps(s[2] + kk), r3 = _mm_loadu_ps(s[3] + kk);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(d + kk * width, r0);
      _mm_storeu_ps(d + (kk + 1) * width, r1);
      _mm_storeu_ps(d + (kk + 2) * width, r2);
      _mm_storeu_ps(d + (kk + 3) * width, r3);
    }
    for (; kk < len; ++kk)
      for (int64_t i = 0; i < 4; ++i) d[kk * width + i] = s[i][kk];
  }
#endif
  for (; r < count; ++r) {
    const float* s = rows[r];
    for (int64_t kk = 0; kk < len; ++kk) dst[kk * width + r] = s[kk];
  }
}

// dst[kk * width + r] = src[r * ld + kk] for r < count (<= 64), kk < kc.
inline void pack_rows_transposed(const float* src, int64_t ld, int64_t count, int64_t kc, int64_t width,
                                 float* dst) {
  const float* rows[64];
  for (int64_t r = 0; r < count; ++r) rows[r] = src + r * ld;
  pack_transpose_rows(rows, count, kc, width, dst);
}

}  // namespace tessera
